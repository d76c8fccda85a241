package fundus

import (
	"image"
	"math"
	"math/rand/v2"
	"sync"
)

// Supersampling factor per axis. Sharp features (field-of-view edge, disc and
// cup rims, vessels, lesion borders) are evaluated at ss×ss points per pixel and
// averaged; smooth terms (illumination, texture, macula) only once per pixel,
// and pixels with no sharp feature at all take a fast path. That keeps a 64×64
// image around a millisecond, so a 20000-image epoch renders in well under a
// minute on one core.
const ss = 3

// Vessel-mask threshold on the averaged vessel coverage of a pixel. Below one
// half so that the thinnest (sub-pixel) branches still appear in the mask.
const vesselMaskThreshold = 0.4

// Render draws the fundus photograph described by p at size×size pixels and
// returns it with its vessel mask and lesion mask (255 inside, 0 outside).
//
// Render is deterministic. The lesion mask marks every pixel any lesion touched
// (any supersample inside the detachment or a haemorrhage), so outside it the
// image and the vessel mask are exactly those of p without lesions.
// Render panics if size < 1.
func Render(p Params, size int) (img *image.RGBA, vessels, lesions *image.Gray) {
	if size < 1 {
		panic("fundus: Render size must be positive")
	}
	p = p.normalized()
	b := getBuffers(size * ss)
	defer bufPool.Put(b)
	return newRenderer(p, size, b).draw()
}

type renderer struct {
	p            Params
	size, n      int
	mac          Point
	art, vein    []float32 // vessel coverage per supersample, arteries and veins
	artB, veinB  []float32 // blurred copies, only when there is a detachment
	hae          []float32 // haemorrhage opacity per supersample (>0: inside)
	det          *detachment
	texA, texB   noise2
	tiltX, tiltY float64
}

// buffers are the supersample planes of one render, pooled because at 64×64
// allocating and collecting them costs as much as filling them.
type buffers struct {
	art, vein, artB, veinB, tmp, hae []float32
}

var bufPool sync.Pool

func getBuffers(n int) *buffers {
	b, _ := bufPool.Get().(*buffers)
	if b == nil || len(b.art) != n*n {
		b = &buffers{}
		for _, s := range []*[]float32{&b.art, &b.vein, &b.artB, &b.veinB, &b.tmp, &b.hae} {
			*s = make([]float32, n*n)
		}
		return b
	}
	clear(b.art)
	clear(b.vein)
	return b
}

func newRenderer(p Params, size int, b *buffers) *renderer {
	n := size * ss
	r := &renderer{p: p, size: size, n: n, mac: p.MaculaCenter()}
	r.art, r.vein = b.art, b.vein
	for _, s := range buildVessels(p) {
		if s.vein {
			rasterSeg(r.vein, n, s)
		} else {
			rasterSeg(r.art, n, s)
		}
	}
	// Texture has its own stream so that changing the vessel grower never
	// changes the background of existing seeds.
	tr := rand.New(rand.NewPCG(p.VesselSeed, 0x7e47))
	r.texA = newNoise(tr, 5)
	r.texB = newNoise(tr, 13)
	a := 2 * math.Pi * tr.Float64()
	r.tiltX, r.tiltY = 0.12*math.Cos(a), 0.12*math.Sin(a)

	if p.Detachment > 0 {
		r.det = newDetachment(p, &r.texB)
		// Detached retina is out of the focal plane: its vessels look blurred.
		// Only the part of the buffers that displaced lookups can reach is blurred.
		x0, y0, x1, y1 := r.det.bounds()
		fn := float64(n)
		m := maxShift*fn + 2
		rect := [4]int{
			max(0, int((x0*fn)-m)), max(0, int((y0*fn)-m)),
			min(n-1, int((x1*fn)+m)), min(n-1, int((y1*fn)+m)),
		}
		// Cleared whole so that nothing from an earlier render can ever leak in.
		clear(b.artB)
		clear(b.veinB)
		r.artB, r.veinB = b.artB, b.veinB
		boxBlur(r.artB, r.art, b.tmp, n, 2, rect)
		boxBlur(r.veinB, r.vein, b.tmp, n, 2, rect)
	}
	if len(p.Haemorrhages) > 0 {
		clear(b.hae)
		r.hae = b.hae
		for i, h := range p.Haemorrhages {
			rasterBlot(r.hae, n, newBlot(p, i, h))
		}
	}
	return r
}

// base is the smooth part of the colour at a pixel: pigment, illumination,
// texture, macula. il is the illumination factor, reused to shade overlays.
type base struct{ r, g, b, il float64 }

func (rd *renderer) baseAt(x, y float64) base {
	p := rd.p
	cx, cy := x-fovCX, y-fovCY
	rr := math.Sqrt(cx*cx+cy*cy) / fovR
	// Vignetting: a broad fall-off plus a darker rim near the aperture edge.
	il := p.Brightness * (1 - 0.45*rr*rr*math.Sqrt(rr)) * (1 - 0.35*smoothstep(0.8, 1.0, rr))
	il *= 1 + rd.tiltX*cx/fovR + rd.tiltY*cy/fovR
	// Orange-red for a light fundus, darker brownish red for a pigmented one.
	pg := p.Pigment
	r := 0.86 - 0.22*pg
	g := 0.36 - 0.15*pg
	b := 0.15 - 0.07*pg
	ta := rd.texA.at(x, y)
	tb := rd.texB.at(x, y)
	r *= 1 + 0.05*ta + 0.03*tb
	g *= 1 + 0.10*ta + 0.08*tb
	b *= 1 + 0.08*ta + 0.06*tb
	// Macula: darker, browner (macular pigment), with a darker foveal pit.
	mx, my := x-rd.mac.X, y-rd.mac.Y
	d2 := (mx*mx + my*my) / (p.DiscRadius * p.DiscRadius)
	if m := bump(d2, 1.7); m > 0 {
		f := bump(d2, 0.45)
		r *= (1 - 0.30*m) * (1 - 0.15*f)
		g *= (1 - 0.42*m) * (1 - 0.20*f)
		b *= (1 - 0.35*m) * (1 - 0.20*f)
	}
	// Slightly paler peripapillary ring.
	ex, ey := (x-p.Disc.X)/p.DiscRadius, (y-p.Disc.Y)/p.DiscRadius
	if pp := bump(ex*ex+ey*ey, 1.3); pp > 0 {
		r *= 1 + 0.08*pp
		g *= 1 + 0.15*pp
		b *= 1 + 0.12*pp
	}
	return base{r * il, g * il, b * il, il}
}

func (rd *renderer) draw() (*image.RGBA, *image.Gray, *image.Gray) {
	size, n, p := rd.size, rd.n, rd.p
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	vm := image.NewGray(img.Rect)
	lm := image.NewGray(img.Rect)
	inv := 1 / float64(size)
	sub := inv / ss
	const w = 1.0 / (ss * ss)
	fr2 := fovR * fovR
	// Disc ellipse (slightly taller than wide, as real discs are) and cup.
	drx, dry := p.DiscRadius, 1.08*p.DiscRadius
	cupX := p.Disc.X + p.temporal()*0.12*p.DiscRadius*(1-p.CupToDisc)
	crx, cry := p.CupToDisc*drx, p.CupToDisc*dry
	discReach := 1.3*dry + inv
	for py := range size {
		y := (float64(py) + 0.5) * inv
		for px := range size {
			x := (float64(px) + 0.5) * inv
			o := py*img.Stride + px*4
			img.Pix[o+3] = 255
			cx, cy := x-fovCX, y-fovCY
			d := math.Sqrt(cx*cx + cy*cy)
			if d > fovR+inv {
				continue // black outside the aperture
			}
			bs := rd.baseAt(x, y)
			nearDisc := math.Abs(x-p.Disc.X) < discReach && math.Abs(y-p.Disc.Y) < discReach
			detCand := rd.det != nil && rd.det.near(x, y, inv)
			k0 := py*ss*n + px*ss
			if !nearDisc && !detCand && d+0.75*inv < fovR && rd.plain(k0) {
				// Fast path for the many pixels with nothing sharp in them.
				img.Pix[o] = to8(bs.r)
				img.Pix[o+1] = to8(bs.g)
				img.Pix[o+2] = to8(bs.b)
				continue
			}
			var dp detPixel
			if detCand {
				dp = rd.det.pixel(x, y, n)
			}
			var sr, sg, sb, vc float64
			lesion := false
			for j := range ss {
				yy := y + (float64(j)-0.5*(ss-1))*sub
				for i := range ss {
					xx := x + (float64(i)-0.5*(ss-1))*sub
					qx, qy := xx-fovCX, yy-fovCY
					if qx*qx+qy*qy > fr2 {
						continue
					}
					k := k0 + j*n + i
					cr, cg, cb := bs.r, bs.g, bs.b
					il := bs.il
					vOp := 1.0
					if nearDisc {
						ex, ey := (xx-p.Disc.X)/drx, (yy-p.Disc.Y)/dry
						dd := math.Sqrt(ex*ex + ey*ey)
						if a := clamp((1-dd)/0.18+0.5, 0, 1); a > 0 {
							// Neuroretinal rim: orange-pink, paler towards the cup.
							li := math.Sqrt(il)
							t := clamp(1-dd, 0, 1)
							rr := 1.0 * li
							rg := (0.68 + 0.06*t) * li
							rb := (0.42 + 0.06*t) * li
							qx, qy := (xx-cupX)/crx, (yy-p.Disc.Y)/cry
							cd := math.Sqrt(qx*qx + qy*qy)
							if c := clamp((1-cd)/0.3+0.5, 0, 1); c > 0 {
								// Cup: pale yellow-white excavation.
								rr += c * (1.0*li - rr)
								rg += c * (0.97*li - rg)
								rb += c * (0.86*li - rb)
							}
							cr += a * (rr - cr)
							cg += a * (rg - cg)
							cb += a * (rb - cb)
							// Vessels on the disc are fainter (they dive into the cup and
							// are seen against a bright, partly translucent rim), so the
							// disc and its cup stay readable at 64×64.
							vOp = 1 - a*(0.75-0.45*smoothstep(0.2, 1, dd))
						}
					}
					ca, cv := float64(rd.art[k]), float64(rd.vein[k])
					vDark := 1.0
					if detCand {
						if dIn := rd.det.depth(xx, yy); dIn > 0 {
							lesion = true
							// Detached retina: greyish-white and folded, more opaque
							// away from the border.
							a := 0.4 + 0.3*smoothstep(0, 0.06, dIn)
							cr += a * (0.76*il*dp.fold - cr)
							cg += a * (0.68*il*dp.fold - cg)
							cb += a * (0.66*il*dp.fold - cb)
							// Its vessels, lifted off the pigment epithelium, are
							// displaced, out of focus (blurred) and look darker.
							ca, cv = 0, 0
							si, sj := px*ss+i+dp.sx, py*ss+j+dp.sy
							if si >= 0 && sj >= 0 && si < n && sj < n {
								ks := sj*n + si
								ca = math.Min(1, 1.3*float64(rd.artB[ks]))
								cv = math.Min(1, 1.3*float64(rd.veinB[ks]))
							}
							vOp, vDark = 1, 1.15
						}
					}
					vc += math.Max(ca, cv)
					if ca > 0 {
						f := math.Min(1, ca*0.8*vOp*vDark)
						cr *= 1 - f*0.35
						cg *= 1 - f*0.72
						cb *= 1 - f*0.69
					}
					if cv > 0 {
						f := math.Min(1, cv*0.92*vOp*vDark)
						cr *= 1 - f*0.55
						cg *= 1 - f*0.83
						cb *= 1 - f*0.76
					}
					if rd.hae != nil {
						if h := float64(rd.hae[k]); h > 0 {
							lesion = true
							cr += h * (0.42*il - cr)
							cg += h * (0.05*il - cg)
							cb += h * (0.045*il - cb)
						}
					}
					sr += cr
					sg += cg
					sb += cb
				}
			}
			img.Pix[o] = to8(sr * w)
			img.Pix[o+1] = to8(sg * w)
			img.Pix[o+2] = to8(sb * w)
			if vc*w >= vesselMaskThreshold {
				vm.Pix[py*vm.Stride+px] = 255
			}
			if lesion {
				lm.Pix[py*lm.Stride+px] = 255
			}
		}
	}
	return img, vm, lm
}

// plain reports whether the ss×ss block of supersamples starting at k0 holds
// no vessel and no haemorrhage.
func (rd *renderer) plain(k0 int) bool {
	for j := range ss {
		k := k0 + j*rd.n
		for i := k; i < k+ss; i++ {
			if rd.art[i] != 0 || rd.vein[i] != 0 || (rd.hae != nil && rd.hae[i] != 0) {
				return false
			}
		}
	}
	return true
}

// bump approximates the Gaussian exp(-d2/(2σ²)) by (1 - d2/(16σ²))⁸, which
// is as smooth to the eye, exactly zero beyond 4σ and several times cheaper.
func bump(d2, sigma float64) float64 {
	u := 1 - d2/(16*sigma*sigma)
	if u <= 0 {
		return 0
	}
	u *= u
	u *= u
	return u * u
}

func to8(v float64) uint8 {
	v = v*255 + 0.5
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v)
}

// rasterSeg writes the anti-aliased coverage of capsule s into buf (n×n
// supersamples, union by max so overlapping segments do not double-darken).
func rasterSeg(buf []float32, n int, s seg) {
	fn := float64(n)
	ax, ay := s.ax*fn-0.5, s.ay*fn-0.5
	bx, by := s.bx*fn-0.5, s.by*fn-0.5
	ra, rb := s.ra*fn, s.rb*fn
	rm := math.Max(ra, rb) + 1
	x0 := max(0, int(math.Floor(math.Min(ax, bx)-rm)))
	x1 := min(n-1, int(math.Ceil(math.Max(ax, bx)+rm)))
	y0 := max(0, int(math.Floor(math.Min(ay, by)-rm)))
	y1 := min(n-1, int(math.Ceil(math.Max(ay, by)+rm)))
	dx, dy := bx-ax, by-ay
	inv := 0.0
	if l2 := dx*dx + dy*dy; l2 > 0 {
		inv = 1 / l2
	}
	for j := y0; j <= y1; j++ {
		py := float64(j) - ay
		row := buf[j*n:]
		for i := x0; i <= x1; i++ {
			px := float64(i) - ax
			t := (px*dx + py*dy) * inv
			if t < 0 {
				t = 0
			} else if t > 1 {
				t = 1
			}
			ex, ey := px-t*dx, py-t*dy
			r := ra + (rb-ra)*t + 0.5
			d2 := ex*ex + ey*ey
			if d2 >= r*r {
				continue
			}
			c := r - math.Sqrt(d2)
			if c > 1 {
				c = 1
			}
			if float32(c) > row[i] {
				row[i] = float32(c)
			}
		}
	}
}

// boxBlur writes into dst a box blur of radius rad of the n×n buffer src,
// computed only inside rect (x0, y0, x1, y1 inclusive) with running sums; tmp
// is scratch space of the same size.
func boxBlur(dst, src, tmp []float32, n, rad int, rect [4]int) {
	x0, y0, x1, y1 := rect[0], rect[1], rect[2], rect[3]
	norm := 1 / float32(2*rad+1)
	ya, yb := max(0, y0-rad), min(n-1, y1+rad)
	for j := ya; j <= yb; j++ {
		row, out := src[j*n:(j+1)*n], tmp[j*n:(j+1)*n]
		var s float32
		for k := max(0, x0-rad); k <= min(n-1, x0+rad); k++ {
			s += row[k]
		}
		for i := x0; i <= x1; i++ {
			out[i] = s * norm
			if k := i + rad + 1; k < n {
				s += row[k]
			}
			if k := i - rad; k >= 0 {
				s -= row[k]
			}
		}
	}
	for j := y0; j <= y1; j++ {
		out := dst[j*n : (j+1)*n]
		for k := max(ya, j-rad); k <= min(yb, j+rad); k++ {
			in := tmp[k*n : (k+1)*n]
			for i := x0; i <= x1; i++ {
				out[i] += in[i]
			}
		}
		for i := x0; i <= x1; i++ {
			out[i] *= norm
		}
	}
}

// detachment is a cap of the field of view cut by a large wavy circle whose
// centre lies outside the aperture in the direction DetachmentAngle, so its
// border bulges towards the posterior pole like a bullous detachment.
type detachment struct {
	cx, cy   float64 // centre of the bounding circle
	rb, amp  float64 // its radius and the amplitude of the waviness
	ax, ay   float64 // unit direction of the detachment (image coords)
	tx, ty   float64 // unit tangent of the border
	ph1, ph2 float64
	far2     float64 // (rb+amp)², for quick rejection
	// The waviness as a function of the coordinate t along the border,
	// tabulated because it is needed at every supersample of the region.
	wave       []float64
	t0, tScale float64
	tex        *noise2
}

func newDetachment(p Params, tex *noise2) *detachment {
	th := p.DetachmentAngle * math.Pi / 180
	d := &detachment{ax: math.Cos(th), ay: -math.Sin(th), tex: tex}
	d.tx, d.ty = -d.ay, d.ax
	d.cx, d.cy, d.rb = DetachmentRegion(p.Detachment, p.DetachmentAngle)
	d.amp = 0.016
	d.ph1 = 3 * th
	d.ph2 = 5 * th
	r := d.rb + d.amp
	d.far2 = r * r
	const nt = 1024
	d.wave = make([]float64, nt+1)
	d.t0, d.tScale = -r, nt/(2*r)
	for i := range d.wave {
		t := d.t0 + float64(i)/d.tScale
		d.wave[i] = d.amp * (0.6*math.Sin(38*t+d.ph1) + 0.4*math.Sin(91*t+d.ph2))
	}
	return d
}

// bounds is the image-space bounding box of the region (within the aperture).
func (d *detachment) bounds() (x0, y0, x1, y1 float64) {
	r := d.rb + d.amp
	return math.Max(d.cx-r, fovCX-fovR), math.Max(d.cy-r, fovCY-fovR),
		math.Min(d.cx+r, fovCX+fovR), math.Min(d.cy+r, fovCY+fovR)
}

// near reports whether the pixel centred at (x, y) (side inv) may touch the region.
func (d *detachment) near(x, y, inv float64) bool {
	dx, dy := x-d.cx, y-d.cy
	r := d.rb + d.amp + inv
	return dx*dx+dy*dy < r*r
}

// depth is the signed distance inside the wavy border (positive inside).
func (d *detachment) depth(x, y float64) float64 {
	dx, dy := x-d.cx, y-d.cy
	q := dx*dx + dy*dy
	if q > d.far2 {
		return -1
	}
	return d.rb + d.waveAt(dx*d.tx+dy*d.ty) - math.Sqrt(q)
}

func (d *detachment) waveAt(t float64) float64 {
	f := (t - d.t0) * d.tScale
	i := int(f)
	if i < 0 {
		return d.wave[0]
	}
	if i >= len(d.wave)-1 {
		return d.wave[len(d.wave)-1]
	}
	f -= float64(i)
	return d.wave[i]*(1-f) + d.wave[i+1]*f
}

// maxShift bounds the vessel displacement inside the region (image units).
const maxShift = 0.022 * 1.5 * 1.2

// detPixel holds what varies smoothly across a pixel of the detachment: the
// fold shading and the vessel displacement (as an offset in supersamples).
type detPixel struct {
	fold   float64
	sx, sy int
}

func (d *detachment) pixel(x, y float64, n int) detPixel {
	dx, dy := x-d.cx, y-d.cy
	t := dx*d.tx + dy*d.ty
	dIn := math.Max(0, d.rb+d.waveAt(t)-math.Sqrt(dx*dx+dy*dy))
	// Folds run roughly parallel to the border, bent by a slow wave along it.
	fold := 1 + 0.07*math.Sin(dIn*75+3*math.Sin(t*11+d.ph1)+2*d.tex.at(x, y))
	// Displacement towards the image centre, growing away from the border (so
	// vessels stay continuous across it), with a wiggle along it.
	m := 0.022 * smoothstep(0, 0.07, dIn)
	a := 1 + 0.5*math.Sin(t*35+d.ph1)
	wg := 0.5 * math.Sin(dIn*60)
	sx := -m*d.ax*a + m*wg*d.tx
	sy := -m*d.ay*a + m*wg*d.ty
	fn := float64(n)
	return detPixel{fold, int(math.Round(sx * fn)), int(math.Round(sy * fn))}
}

// blot is one haemorrhage: a dot/blot (round, slightly irregular) or a flame
// (elongated along the nerve fibres, i.e. radially from the disc, tapering).
type blot struct {
	cx, cy float64
	flame  bool
	a, b   float64 // half length along (dx, dy), half width
	dx, dy float64
	wob    float64
	ph     float64
}

func newBlot(p Params, i int, c Point) blot {
	// Shape comes from the lesion itself (position and index), not from a
	// shared random stream, so adding a blot never changes the others.
	r := rand.New(rand.NewPCG(math.Float64bits(c.X)^uint64(i), math.Float64bits(c.Y)))
	b := blot{cx: c.X, cy: c.Y, ph: 2 * math.Pi * r.Float64()}
	b.dx, b.dy = c.X-p.Disc.X, c.Y-p.Disc.Y
	if l := math.Hypot(b.dx, b.dy); l > 1e-9 {
		b.dx, b.dy = b.dx/l, b.dy/l
	} else {
		b.dx, b.dy = 1, 0
	}
	if r.IntN(2) == 0 {
		b.flame = true
		b.a = 0.045 + 0.015*r.Float64()
		b.b = 0.019 + 0.005*r.Float64()
	} else {
		b.a = 0.027 + 0.012*r.Float64()
		b.b = b.a * (0.8 + 0.2*r.Float64())
		b.wob = 0.12
	}
	return b
}

// rasterBlot writes the haemorrhage opacity (darker at the core) into buf.
func rasterBlot(buf []float32, n int, b blot) {
	fn := float64(n)
	reach := 1.5 * b.a
	x0 := max(0, int((b.cx-reach)*fn))
	x1 := min(n-1, int((b.cx+reach)*fn))
	y0 := max(0, int((b.cy-reach)*fn))
	y1 := min(n-1, int((b.cy+reach)*fn))
	for j := y0; j <= y1; j++ {
		y := (float64(j) + 0.5) / fn
		for i := x0; i <= x1; i++ {
			x := (float64(i) + 0.5) / fn
			rx, ry := x-b.cx, y-b.cy
			s := rx*b.dx + ry*b.dy
			q := -rx*b.dy + ry*b.dx
			var f float64
			if b.flame {
				u := s / b.a
				taper := 1 - 0.45*clamp(u, -1, 1)
				v := q / (b.b * taper)
				f = u*u + v*v
			} else {
				w := 1 + b.wob*math.Sin(3*math.Atan2(q, s)+b.ph)
				f = (s*s/(b.a*b.a) + q*q/(b.b*b.b)) / (w * w)
			}
			if f >= 1 {
				continue
			}
			o := float32(0.85 + 0.15*(1-f))
			if o > buf[j*n+i] {
				buf[j*n+i] = o
			}
		}
	}
}

// noise2 is smooth value noise on a g×g lattice over the unit square.
type noise2 struct {
	g int
	v []float64
}

func newNoise(r *rand.Rand, g int) noise2 {
	v := make([]float64, (g+1)*(g+1))
	for i := range v {
		v[i] = 2*r.Float64() - 1
	}
	return noise2{g, v}
}

func (n noise2) at(x, y float64) float64 {
	fx, fy := clamp(x, 0, 1)*float64(n.g), clamp(y, 0, 1)*float64(n.g)
	ix, iy := min(int(fx), n.g-1), min(int(fy), n.g-1)
	tx, ty := fx-float64(ix), fy-float64(iy)
	tx, ty = tx*tx*(3-2*tx), ty*ty*(3-2*ty)
	s := n.g + 1
	v00, v10 := n.v[iy*s+ix], n.v[iy*s+ix+1]
	v01, v11 := n.v[(iy+1)*s+ix], n.v[(iy+1)*s+ix+1]
	return (v00*(1-tx)+v10*tx)*(1-ty) + (v01*(1-tx)+v11*tx)*ty
}
