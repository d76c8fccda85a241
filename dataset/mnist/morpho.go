package mnist

import "math"

// MorphoFactors are the shape measures of a digit that MNIST's samples carry
// beside their class, in this order after "label": what its directions are
// named by, since MNIST has no other ground truth to name them with.
var MorphoFactors = []string{"thickness", "slant", "width", "height"}

// Morphometry is the shape of one grey digit, measured from its pixels.
//
// The measures follow what Morpho-MNIST (Castro et al. 2019) reports, with
// image moments in place of its skeletonisation so that they are a few
// lines, exact to test and cheap enough to compute for every sample:
//   - Slant: the horizontal shear of the ink, −μ11/μ02 (the shear a deskew
//     removes; positive leans right, with y growing downwards), in pixels of
//     horizontal offset per pixel of height.
//   - Width and Height: 4 standard deviations of the ink across and along
//     the slant, in pixels: √(μ20 − μ11²/μ02) is the horizontal spread once
//     the shear is removed, so a slanted 1 stays narrow.
//   - Thickness: the width w of the rectangle that has the digit's ink mass
//     A (in pixels of full ink) and its outline length E (the ½-ink contour,
//     outline): L·w = A and 2(L + w) = E give w = (E/2 − √(E²/4 − 4A))/2:
//     close for a bar of any length and slant, and for a bent stroke, whose
//     outline is that of the bar it bends from. Counting pixel edges
//     instead would read a slanted stroke's staircase as a longer outline
//     and the stroke as thinner.
type Morphometry struct {
	Thickness, Slant, Width, Height float64
}

// Values lists the measures in MorphoFactors' order.
func (m Morphometry) Values() []float32 {
	return []float32{float32(m.Thickness), float32(m.Slant), float32(m.Width), float32(m.Height)}
}

// Measure returns the shape of the side×side grey image pix (0 background,
// 255 full ink). A blank image measures all zeros.
func Measure(pix []uint8, side int) Morphometry {
	var mass, sx, sy float64
	for y := 0; y < side; y++ {
		for x := 0; x < side; x++ {
			p := float64(pix[y*side+x]) / 255
			mass += p
			sx += p * float64(x)
			sy += p * float64(y)
		}
	}
	if mass == 0 {
		return Morphometry{}
	}
	cx, cy := sx/mass, sy/mass
	var m20, m02, m11 float64
	for y := 0; y < side; y++ {
		for x := 0; x < side; x++ {
			p := float64(pix[y*side+x]) / 255
			dx, dy := float64(x)-cx, float64(y)-cy
			m20 += p * dx * dx
			m02 += p * dy * dy
			m11 += p * dx * dy
		}
	}
	m20, m02, m11 = m20/mass, m02/mass, m11/mass
	var out Morphometry
	if m02 > 0 {
		out.Slant = -m11 / m02
		out.Width = 4 * math.Sqrt(math.Max(m20-m11*m11/m02, 0))
	} else {
		out.Width = 4 * math.Sqrt(m20)
	}
	out.Height = 4 * math.Sqrt(m02)
	if e := outline(pix, side); e > 0 {
		h := e / 2 // L + w
		out.Thickness = (h - math.Sqrt(math.Max(h*h-4*mass, 0))) / 2
	}
	return out
}

// outline is the length of the contour at half ink of the side×side image,
// by marching squares over cells whose corners are pixel centres (the
// image padded with blank pixels, so every contour closes), each crossing
// placed by linear interpolation.
func outline(pix []uint8, side int) float64 {
	at := func(x, y int) float64 {
		if x < 0 || y < 0 || x >= side || y >= side {
			return -0.5
		}
		return float64(pix[y*side+x])/255 - 0.5
	}
	var total float64
	for y := -1; y < side; y++ {
		for x := -1; x < side; x++ {
			// Corners clockwise from the top left, and the crossing on each
			// edge (top, right, bottom, left) where the sign changes.
			c := [4]float64{at(x, y), at(x+1, y), at(x+1, y+1), at(x, y+1)}
			pos := [4][2]float64{{0, 0}, {1, 0}, {1, 1}, {0, 1}}
			var pts [][2]float64
			for e := 0; e < 4; e++ {
				a, b := c[e], c[(e+1)%4]
				if (a >= 0) == (b >= 0) {
					continue
				}
				t := a / (a - b)
				pa, pb := pos[e], pos[(e+1)%4]
				pts = append(pts, [2]float64{pa[0] + t*(pb[0]-pa[0]), pa[1] + t*(pb[1]-pa[1])})
			}
			dist := func(p, q [2]float64) float64 { return math.Hypot(p[0]-q[0], p[1]-q[1]) }
			switch len(pts) {
			case 2:
				total += dist(pts[0], pts[1])
			case 4: // a saddle, crossings top, right, bottom, left
				// The cell's mean decides whether the ink diagonal joins
				// through the centre. If the centre is like the top-left
				// corner, the contour cuts off the top-right and
				// bottom-left corners; otherwise the other two.
				if ((c[0]+c[1]+c[2]+c[3])/4 >= 0) == (c[0] >= 0) {
					total += dist(pts[0], pts[1]) + dist(pts[2], pts[3])
				} else {
					total += dist(pts[0], pts[3]) + dist(pts[1], pts[2])
				}
			}
		}
	}
	return total
}
