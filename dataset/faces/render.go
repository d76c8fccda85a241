package faces

import (
	"image"
	"math"
)

// The renderer draws the character as a stack of layers, each a signed
// distance function (negative inside) in unit image coordinates: x and y run
// from 0 to 1 across the image, y pointing down. A layer covers a pixel by
// clamp(0.5 - d/pixel, 0, 1), the analytic coverage of a straight edge through
// the pixel, which anti-aliases every edge with one evaluation per pixel
// instead of 16 supersamples — that is what keeps a 32×32 face well under a
// millisecond. Working in unit coordinates makes the 32 and 64 renderings the
// same picture at two resolutions; the one exception is the mouth stroke,
// which is kept about a pixel wide so the mouth stays legible at 32×32.
//
// Head pose is a rotation of a sphere-like head: facial features are placed by
// azimuth and elevation on an ellipsoid, rotated by yaw and pitch and projected
// orthographically, so pose moves and foreshortens the features consistently
// instead of by separate hand-tuned offsets.

// Layout of the neutral face, in unit image coordinates.
const (
	headX    = 0.5  // head centre, x
	headY    = 0.43 // head centre, y
	headRy   = 0.3  // vertical radius of the face ellipse
	yawMax   = 0.55 // radians of head turn at |Yaw| = 1
	pitchMax = 0.38 // radians of head tilt at |Pitch| = 1
)

type rgb struct{ r, g, b float64 }

func mix(a, b rgb, t float64) rgb {
	return rgb{a.r + (b.r-a.r)*t, a.g + (b.g-a.g)*t, a.b + (b.b-a.b)*t}
}

func (c rgb) mul(k float64) rgb { return rgb{c.r * k, c.g * k, c.b * k} }

func rgb8(r, g, b float64) rgb { return rgb{r / 255, g / 255, b / 255} }

// hsv converts hue h in [0,1), saturation and value in [0,1] to RGB in [0,1].
func hsv(h, s, v float64) rgb {
	h = (h - math.Floor(h)) * 6
	i := math.Floor(h)
	f := h - i
	p, q, t := v*(1-s), v*(1-s*f), v*(1-s*(1-f))
	switch int(i) % 6 {
	case 0:
		return rgb{v, t, p}
	case 1:
		return rgb{q, v, p}
	case 2:
		return rgb{p, v, t}
	case 3:
		return rgb{p, q, v}
	case 4:
		return rgb{t, p, v}
	default:
		return rgb{v, p, q}
	}
}

func clamp(v, lo, hi float64) float64 {
	if v != v || v < lo { // NaN goes to lo so that a bad label still renders
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

func wrap(h float64) float64 {
	if h != h || math.IsInf(h, 0) {
		return 0
	}
	return h - math.Floor(h)
}

// ellipse is an approximate signed distance to an axis-aligned ellipse
// centred at the origin (Quilez's k0·(k0-1)/k1 bound), exact enough for
// coverage and far cheaper than the exact quartic solution.
func ellipse(x, y, rx, ry float64) float64 {
	ax, ay := x/rx, y/ry
	k0 := math.Sqrt(ax*ax + ay*ay)
	bx, by := ax/rx, ay/ry
	k1 := math.Sqrt(bx*bx + by*by)
	if k1 == 0 {
		return -math.Min(rx, ry)
	}
	return k0 * (k0 - 1) / k1
}

// capsule is the distance to the segment (ax,ay)-(bx,by) minus a radius that
// tapers linearly from ra to rb; used for eyebrows and hair locks.
func capsule(x, y, ax, ay, bx, by, ra, rb float64) float64 {
	px, py := x-ax, y-ay
	dx, dy := bx-ax, by-ay
	t := clamp((px*dx+py*dy)/(dx*dx+dy*dy), 0, 1)
	ex, ey := px-dx*t, py-dy*t
	return math.Sqrt(ex*ex+ey*ey) - (ra + (rb-ra)*t)
}

// line is a half-plane through (ax, ay) with unit normal (nx, ny) pointing out.
type line struct{ ax, ay, nx, ny float64 }

func (l line) dist(x, y float64) float64 { return (x-l.ax)*l.nx + (y-l.ay)*l.ny }

// halfPlane builds the half-plane bounded by the line through a and b that
// contains the point (ix, iy).
func halfPlane(ax, ay, bx, by, ix, iy float64) line {
	nx, ny := by-ay, -(bx - ax)
	n := math.Sqrt(nx*nx + ny*ny)
	l := line{ax, ay, nx / n, ny / n}
	if l.dist(ix, iy) > 0 {
		l.nx, l.ny = -l.nx, -l.ny
	}
	return l
}

// feature is a facial feature after pose: its centre and the horizontal and
// vertical foreshortening of its size.
type feature struct{ x, y, sx, sy float64 }

type eye struct {
	feature
	bx, by float64 // half-size of the bounding box, to skip far pixels
}

type scene struct {
	pix float64 // pixel size in unit coordinates

	w, sinYaw  float64 // face half-width; sin of the yaw angle
	yaw, pitch float64

	// colours
	bg, skin, skinShade, faceLine, blush rgb
	hair, hairBack, hairLine, hairShine  rgb
	irisLight, irisDark, pupil, eyeLine  rgb
	shirt, mouthLine, mouthInside, teeth rgb
	white                                rgb

	// face outline: ellipse intersected with a V towards the chin
	chinL, chinR line
	jawRy        float64 // vertical radius of the lower half of the face ellipse

	// hair
	backX, backY, backRx, backRy float64 // cranium hair behind the head
	hairBottom                   float64 // lowest point of the back hair
	capX, capY, capRx, capRy     float64 // front hair cap
	fringeMid, fringeY           float64 // fringe midline x and tip height
	fringeAmp, fringeNorm        float64
	templeDrop                   float64
	lockX                        [2]float64 // side lock top x
	lockTop, lockBottom          float64
	lockSpread                   [2]float64 // horizontal travel of each lock

	neckX  float64
	torsoX float64

	eyes   [2]eye
	brows  [2][4]float64 // segment end points
	blushF [2]feature
	nose   feature

	// mouth
	mouth             feature
	mouthW, mouthBend float64 // half-width, corner lift (positive = smile)
	mouthOpen         float64 // depth of the open mouth
	mouthBx, mouthBy  float64
	mouthTh           float64
}

// project places a point of the head given by azimuth a (right positive) and
// elevation e (up positive) in the image after the pose rotation.
func (s *scene) project(a, e float64) feature {
	return s.projectDepth(a, e, 1)
}

// projectDepth is project for a point that sticks out of the head by the
// factor depth (the chin does: it swings further than the mouth when the head
// tilts, which keeps the mouth off the jaw line when looking down).
func (s *scene) projectDepth(a, e, depth float64) feature {
	ce, se := math.Cos(e), math.Sin(e)
	x0, z0 := ce*math.Sin(a), ce*math.Cos(a)*depth
	sy, cy := math.Sin(s.yaw), math.Cos(s.yaw)
	X := x0*cy + z0*sy
	Z := z0*cy - x0*sy
	Y := se*math.Cos(s.pitch) + Z*math.Sin(s.pitch)
	return feature{
		x:  headX + s.w*X,
		y:  headY - headRy*Y,
		sx: math.Max(math.Cos(a+s.yaw), 0.25),
		sy: math.Max(math.Cos(e+s.pitch), 0.4),
	}
}

func newScene(f Factors, size int) *scene {
	s := &scene{pix: 1 / float64(size)}
	smile := clamp(f.Smile, -1, 1)
	bangs := clamp(f.Bangs, 0, 1)
	length := clamp(f.HairLength, 0, 1)
	s.yaw = clamp(f.Yaw, -1, 1) * yawMax
	s.pitch = clamp(f.Pitch, -1, 1) * pitchMax
	s.sinYaw = math.Sin(s.yaw)
	s.w = 0.23 + 0.1*clamp(f.FaceWidth, 0, 1)

	// Colours. Background and hair are pure functions of their hue so that
	// the hue factors are the only thing that changes them.
	s.bg = hsv(wrap(f.Background), 0.25, 0.97)
	tone := clamp(f.SkinTone, 0, 1)
	s.skin = mix(rgb8(255, 231, 214), rgb8(150, 96, 64), tone)
	s.skinShade = s.skin.mul(0.82)
	s.faceLine = mix(s.skin.mul(0.55), rgb8(90, 40, 30), 0.3)
	s.blush = rgb8(250, 120, 130)
	hh := wrap(f.HairColour)
	s.hair = hsv(hh, 0.68, 0.9)
	s.hairBack = hsv(hh, 0.75, 0.68)
	s.hairLine = hsv(hh, 0.8, 0.3)
	s.hairShine = mix(s.hair, rgb{1, 1, 1}, 0.5)
	eh := wrap(f.EyeColour)
	s.irisLight = hsv(eh, 0.6, 1)
	s.irisDark = hsv(eh, 0.9, 0.6)
	s.pupil = hsv(eh, 0.9, 0.2)
	s.eyeLine = rgb8(40, 24, 30)
	s.shirt = rgb8(70, 80, 125)
	s.mouthLine = rgb8(85, 20, 30)
	s.mouthInside = rgb8(120, 25, 40)
	s.teeth = rgb8(255, 255, 255)
	s.white = rgb{1, 1, 1}

	// Face outline: the chin is a point on the head ellipsoid, so pitch
	// shortens the lower face and yaw swings the chin towards the turn.
	chin := s.projectDepth(0, -1.1, 1.8)
	// Looking down swings the chin below the resting face ellipse; the lower
	// half of the ellipse stretches to follow it so the V is not cut off.
	s.jawRy = math.Max(headRy, chin.y-headY+0.01)
	jawY := headY + 0.35*(chin.y-headY)
	jx := s.w * math.Sqrt(1-sq((jawY-headY)/s.jawRy)) * 0.99
	s.chinL = halfPlane(chin.x, chin.y, headX-jx, jawY, headX, headY)
	s.chinR = halfPlane(chin.x, chin.y, headX+jx, jawY, headX, headY)

	// Hair behind the head shifts against the turn: the back of the head
	// shows on the near side.
	s.backX = headX - 0.25*s.w*s.sinYaw
	s.backY = headY - 0.02
	s.backRx = s.w + 0.065
	s.backRy = headRy + 0.075
	s.hairBottom = headY + 0.04 + length*(1.03-headY-0.04)

	s.capX = headX - 0.08*s.w*s.sinYaw
	s.capY = headY - 0.025
	s.capRx = s.w + 0.045
	s.capRy = headRy + 0.06
	fe := 1.3 + (0.4-1.3)*bangs // elevation of the fringe tips: hairline → eyebrows
	fp := s.project(0, fe)
	s.fringeMid, s.fringeY = fp.x, fp.y
	s.fringeAmp = 0.015 + 0.045*bangs
	s.fringeNorm = math.Sqrt(1 + sq(2*s.fringeAmp/fringePeriod))
	s.templeDrop = 0.09

	for k := range s.lockX {
		// The locks hang from the sides of the skull, so they stay near the
		// silhouette and only drift a little with the turn; letting them
		// follow the face would drag the near lock across the cheek.
		side := float64(2*k - 1)
		s.lockX[k] = headX + side*(s.w+0.008) + 0.15*s.w*s.sinYaw
		s.lockSpread[k] = 0.04 * side
	}
	s.lockTop = headY - 0.12
	s.lockBottom = headY - 0.02 + length*(1.02-headY+0.02)

	s.neckX = headX + 0.3*s.w*s.sinYaw
	s.torsoX = headX + 0.1*s.w*s.sinYaw

	for k, a := range [2]float64{-0.5, 0.5} {
		p := s.project(a, -0.12)
		s.eyes[k] = eye{feature: p, bx: 0.1*p.sx + 2*s.pix, by: 0.125*p.sy + 2*s.pix}
		b := s.project(a*1.05, 0.45)
		outer := float64(2*k - 1) // -1 on the left, +1 on the right
		s.brows[k] = [4]float64{b.x - 0.045*b.sx*outer, b.y - 0.006, b.x + 0.05*b.sx*outer, b.y + 0.006}
		s.blushF[k] = s.project(a*1.3, -0.42)
	}
	s.nose = s.project(0, -0.36)

	// Mouth: a curved stroke whose ends lift with smile, widening and then
	// opening (dark inside, teeth along the top) for a broad smile.
	s.mouth = s.project(0, -0.66)
	pos, neg := math.Max(smile, 0), math.Max(-smile, 0)
	s.mouthW = (0.06 + 0.035*pos - 0.006*neg) * s.mouth.sx
	s.mouthBend = (0.045*pos - 0.035*neg) * s.mouth.sy
	s.mouthOpen = clamp((smile-0.15)/0.85, 0, 1) * mouthOpenMax * s.mouth.sy
	// The lips are a stroke of about one pixel at 32×32 (thinner than that
	// it fades to a smudge) but no thicker than a cartoon line at 64×64.
	s.mouthTh = math.Max(0.018, 1.15*s.pix)
	s.mouthBx = s.mouthW + 0.02 + 2*s.pix
	s.mouthBy = math.Abs(s.mouthBend) + s.mouthOpen + 0.02 + 2*s.pix
	return s
}

const (
	fringePeriod = 0.08
	mouthOpenMax = 0.12
)

func sq(v float64) float64 { return v * v }

// smax is a smooth maximum (intersection with a rounded crease of size k),
// used to round the jaw corners where the chin lines meet the face ellipse.
func smax(a, b, k float64) float64 {
	h := k - math.Abs(a-b)
	if h <= 0 {
		return math.Max(a, b)
	}
	h /= k
	return math.Max(a, b) + h*h*k/4
}

func cover(d, pix float64) float64 {
	a := 0.5 - d/pix
	if a <= 0 {
		return 0
	}
	if a >= 1 {
		return 1
	}
	return a
}

// paint composites colour col over c with the coverage of the shape d.
func (s *scene) paint(c rgb, d float64, col rgb) rgb {
	a := cover(d, s.pix)
	if a == 0 {
		return c
	}
	return mix(c, col, a)
}

// paintLined paints a shape with an inner outline of width lw: cartoon
// outlines are what keeps small shapes readable at 32×32.
func (s *scene) paintLined(c rgb, d float64, fill, lineCol rgb, lw float64) rgb {
	a := cover(d, s.pix)
	if a == 0 {
		return c
	}
	c = mix(c, lineCol, a)
	return s.paint(c, d+lw, fill)
}

// Render draws the character described by f as a size×size image (size 0
// means 32). The same factors and size always give the same pixels.
func Render(f Factors, size int) *image.RGBA {
	if size <= 0 {
		size = defaultSize
	}
	s := newScene(f, size)
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	to8 := func(v float64) uint8 {
		v = v*255 + 0.5
		if v <= 0 {
			return 0
		}
		if v >= 255 {
			return 255
		}
		return uint8(v)
	}
	for py := 0; py < size; py++ {
		y := (float64(py) + 0.5) * s.pix
		row := img.Pix[py*img.Stride:]
		for px := 0; px < size; px++ {
			x := (float64(px) + 0.5) * s.pix
			c := s.shade(x, y)
			row[4*px] = to8(c.r)
			row[4*px+1] = to8(c.g)
			row[4*px+2] = to8(c.b)
			row[4*px+3] = 255
		}
	}
	return img
}

// shade returns the colour at unit coordinates (x, y), back to front.
func (s *scene) shade(x, y float64) rgb {
	c := s.bg

	// Back hair: the cranium mass plus a curtain that grows with hair
	// length, cut at the hair bottom with a scalloped edge of strand tips.
	{
		dx := x - s.backX
		d := ellipse(dx, y-s.backY, s.backRx, s.backRy)
		t := clamp((y-headY)/0.5, 0, 1)
		curtain := math.Max(math.Abs(dx)-(s.w+0.055+0.1*t), headY-0.05-y)
		d = math.Min(d, curtain)
		cut := y - (s.hairBottom - 0.012*(1+math.Cos(dx*2*math.Pi/0.07)))
		d = math.Max(d, cut)
		c = s.paintLined(c, d, s.hairBack, s.hairLine, 0.012)
	}

	// Torso and neck.
	c = s.paintLined(c, ellipse(x-s.torsoX, y-1.0, 0.38, 0.25), s.shirt, s.shirt.mul(0.6), 0.012)
	{
		dx := math.Abs(x - s.neckX)
		d := math.Max(dx-0.068, math.Max(headY+0.05-y, y-0.76))
		d = math.Min(d, ellipse(x-s.neckX, y-0.76, 0.068, 0.05)) // rounded neckline
		c = s.paint(c, d, s.skinShade)
	}

	// Face.
	ry := headRy
	if y > headY {
		ry = s.jawRy
	}
	face := ellipse(x-headX, y-headY, s.w, ry)
	face = smax(face, smax(s.chinL.dist(x, y), s.chinR.dist(x, y), 0.02), 0.05)
	c = s.paintLined(c, face, s.skin, s.faceLine, 0.011)
	if face < s.pix {
		for k := range s.blushF {
			b := &s.blushF[k]
			if d := ellipse(x-b.x, y-b.y, 0.04*b.sx, 0.02*b.sy); d < s.pix {
				c = mix(c, s.blush, 0.4*cover(d, s.pix))
			}
		}
		c = s.paint(c, ellipse(x-s.nose.x, y-s.nose.y, 0.011*s.nose.sx, 0.008*s.nose.sy), s.skin.mul(0.72))
		for k := range s.eyes {
			c = s.drawEye(c, &s.eyes[k], x, y)
		}
		for k := range s.brows {
			b := &s.brows[k]
			c = s.paint(c, capsule(x, y, b[0], b[1], b[2], b[3], 0.009, 0.006), s.hairLine)
		}
		c = s.drawMouth(c, x, y)
	}

	// Front hair: a cap over the head whose lower edge is the fringe (a row
	// of pointed strands at a height set by Bangs), plus two side locks that
	// frame the face and grow with hair length.
	{
		dm := x - s.fringeMid
		u := dm / fringePeriod
		w := math.Abs(u - math.Round(u))
		yf := s.fringeY + s.templeDrop*sq(dm/s.w) - s.fringeAmp*2*w
		fr := (y - yf) / s.fringeNorm
		capD := ellipse(x-s.capX, y-s.capY, s.capRx, s.capRy)
		front := math.Max(capD, fr)
		d := front
		for k := range s.lockX {
			t := clamp((y-s.lockTop)/(s.lockBottom-s.lockTop), 0, 1)
			lx := s.lockX[k] + s.lockSpread[k]*t
			d = math.Min(d, capsule(x, y, s.lockX[k], s.lockTop, lx, s.lockBottom, 0.03, 0.006))
		}
		if d < s.pix {
			c = s.paintLined(c, d, s.hair, s.hairLine, 0.012)
			// A glossy band across the crown, the classic anime hair shine.
			ring := math.Abs(ellipse(x-s.capX, y-s.capY+0.02, s.capRx*0.78, s.capRy*0.78)) - 0.011
			shine := math.Max(math.Max(ring, front+0.02), y-(s.capY-0.15))
			c = s.paint(c, shine, s.hairShine)
		}
	}
	return c
}

// drawEye draws one big anime eye: dark upper lash line, white, a coloured
// iris darker at the top, pupil, and white highlights.
func (s *scene) drawEye(c rgb, e *eye, x, y float64) rgb {
	dx, dy := x-e.x, y-e.y
	if math.Abs(dx) > e.bx || math.Abs(dy) > e.by {
		return c
	}
	sx, sy := e.sx, e.sy
	outline := ellipse(dx, dy+0.014*sy, 0.086*sx, 0.102*sy)
	c = s.paint(c, outline, s.eyeLine)
	white := ellipse(dx, dy, 0.072*sx, 0.084*sy)
	c = s.paint(c, white, s.white)
	iy := dy - 0.01*sy
	iris := math.Max(ellipse(dx, iy, 0.058*sx, 0.074*sy), white)
	t := clamp((iy+0.074*sy)/(0.148*sy), 0, 1)
	c = s.paint(c, iris, mix(s.irisDark, s.irisLight, t))
	c = s.paint(c, ellipse(dx, iy, 0.026*sx, 0.038*sy), s.pupil)
	// Lash shadow over the top of the eye.
	c = s.paint(c, math.Max(white, dy+0.064*sy), s.eyeLine)
	c = s.paint(c, ellipse(dx+0.024*sx, dy+0.022*sy, 0.023*sx, 0.023*sy), s.white)
	c = s.paint(c, ellipse(dx-0.022*sx, dy-0.035*sy, 0.011*sx, 0.011*sy), s.white)
	return c
}

// drawMouth draws the mouth stroke y = -bend·t² (t = x/halfwidth) and, for
// a broad smile, the open mouth below it.
func (s *scene) drawMouth(c rgb, x, y float64) rgb {
	m := &s.mouth
	dx, dy := x-m.x, y-m.y
	if math.Abs(dx) > s.mouthBx || math.Abs(dy) > s.mouthBy {
		return c
	}
	w, b := s.mouthW, s.mouthBend
	var d float64
	if math.Abs(dx) <= w {
		t := dx / w
		slope := 2 * b * dx / (w * w)
		d = math.Abs(dy+b*t*t)/math.Sqrt(1+slope*slope) - s.mouthTh/2
	} else {
		ex := math.Abs(dx) - w
		d = math.Sqrt(ex*ex+sq(dy+b)) - s.mouthTh/2
	}
	c = s.paint(c, d, s.mouthLine)
	if s.mouthOpen > 0 {
		t := clamp(dx/w, -1, 1)
		top := -b * t * t
		bottom := top + s.mouthOpen*(1-t*t)
		in := math.Max(math.Max(top-dy, dy-bottom), math.Abs(dx)-w)
		c = s.paintLined(c, in, s.mouthInside, s.mouthLine, 0.01)
		// Teeth only show once the mouth is well open; on a slit they would
		// just wash the dark opening out to pink.
		if th := 0.035 * clamp((s.mouthOpen/mouthOpenMax-0.4)/0.6, 0, 1); th > 0 {
			c = s.paint(c, math.Max(in+0.006, dy-top-th), s.teeth)
		}
	}
	return c
}
