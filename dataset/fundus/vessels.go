package fundus

import (
	"math"
	"math/rand/v2"
)

// seg is one piece of a vessel: a capsule from a to b whose half-width varies
// linearly from ra to rb. Coordinates are image units.
type seg struct {
	ax, ay, bx, by float64
	ra, rb         float64
	vein           bool
}

// Vessel widths (full widths, image units). They are exaggerated with respect to
// anatomy (a real main vein is about 1/14 of the disc diameter) so that vessel
// calibre is visible at 64×64: a main vein is about 2 pixels wide there.
const (
	stepLen  = 0.014  // walker step
	minWidth = 0.0095 // vessels end when thinner than this (about 0.6 px at 64×64)
)

// tree grows the vessel tree. It sees only structure fields: the vessel
// geometry must not move when lesions are added (see package comment).
type tree struct {
	rng        *rand.Rand
	segs       []seg
	dx, dy, rd float64 // disc centre and radius
	mx, my     float64 // fovea
	ux, uy     float64 // unit vector disc → fovea (temporal)
	dm         float64 // disc–fovea distance
	supSign    float64 // sign making perp(e_r) point up (superior) at the disc
	fovea      float64 // radius of the foveal avascular zone
}

// buildVessels returns the vessel segments for the structure of p (p normalized).
func buildVessels(p Params) []seg {
	m := p.MaculaCenter()
	t := &tree{
		rng: rand.New(rand.NewPCG(p.VesselSeed, 0x7e55e1)),
		dx:  p.Disc.X, dy: p.Disc.Y, rd: p.DiscRadius,
		mx: m.X, my: m.Y,
		fovea: 0.9 * p.DiscRadius,
	}
	t.ux, t.uy = m.X-t.dx, m.Y-t.dy
	t.dm = math.Hypot(t.ux, t.uy)
	t.ux, t.uy = t.ux/t.dm, t.uy/t.dm
	// At the disc e_r = -u and perp(-u) = (u.y, -u.x); superior is image up (-y).
	t.supSign = 1
	if t.ux < 0 { // the y component of perp(-u) is -u.x; it must be negative (up)
		t.supSign = -1
	}
	r := t.rng
	temporalAngle := math.Atan2(t.uy, t.ux)
	nasalAngle := temporalAngle + math.Pi
	up := -math.Pi / 2

	// Main temporal arcades: vein and artery above and below, curving around the macula.
	for _, sup := range []float64{1, -1} {
		h := up
		if sup < 0 {
			h = -up
		}
		t.start(h+0.25*(r.Float64()-0.5), 0.027+0.003*r.Float64(), true, 1.2, 0.9+0.08*r.Float64(), sup)
		t.start(h+0.25*(r.Float64()-0.5), 0.021+0.003*r.Float64(), false, 1.2, 0.8+0.08*r.Float64(), sup)
	}
	// Nasal vessels: superonasal and inferonasal pairs plus a small horizontal one.
	for _, side := range []float64{1, -1} {
		// Rotate the nasal direction towards up (side 1) or down (side -1).
		rot := (0.75 + 0.35*r.Float64())
		h := nasalAngle + rot*angleTowards(nasalAngle, side*up)
		t.start(h, 0.021+0.003*r.Float64(), true, 0.7, 0, 0)
		t.start(h+0.25*(r.Float64()-0.5), 0.017+0.003*r.Float64(), false, 0.7, 0, 0)
	}
	t.start(nasalAngle+0.4*(r.Float64()-0.5), 0.014, r.IntN(2) == 0, 0.5, 0, 0)
	// Small papillomacular vessels heading towards the fovea.
	for _, s := range []float64{1, -1} {
		t.start(temporalAngle+s*(0.25+0.2*r.Float64()), 0.012, s > 0, 0.25, 0, 0)
	}
	return t.segs
}

// angleTowards returns sign(target-h) as ±1 in the shortest-rotation sense.
func angleTowards(h, target float64) float64 {
	if angDiff(target, h) >= 0 {
		return 1
	}
	return -1
}

// angDiff returns a-b wrapped to (-π, π] (headings stay within a few turns,
// so a loop is cheaper than math.Mod).
func angDiff(a, b float64) float64 {
	d := a - b
	for d > math.Pi {
		d -= 2 * math.Pi
	}
	for d <= -math.Pi {
		d += 2 * math.Pi
	}
	return d
}

// start launches a main vessel from near the disc centre.
func (t *tree) start(h, w float64, vein bool, length, arcR, arcSide float64) {
	// Vessels emerge from the cup, a little off-centre in their own direction.
	x := t.dx + 0.15*t.rd*math.Cos(h) + 0.05*t.rd*(t.rng.Float64()-0.5)
	y := t.dy + 0.15*t.rd*math.Sin(h) + 0.05*t.rd*(t.rng.Float64()-0.5)
	t.grow(x, y, h, w, vein, length, 0, arcR, arcSide)
}

// grow walks one vessel, emitting segments and spawning branches. arcSide is
// +1/-1 for the superior/inferior temporal arcades (which are steered around the
// fovea on a widening spiral of relative radius arcR) and 0 for a free vessel.
func (t *tree) grow(x, y, h, w float64, vein bool, length float64, depth int, arcR, arcSide float64) {
	r := t.rng
	turn := 0.0
	gap := t.branchGap(depth, arcSide != 0)
	inward := r.IntN(2) == 0
	for s := 0.0; s < length && w >= minWidth; s += stepLen {
		if arcSide != 0 {
			ex, ey := x-t.mx, y-t.my
			rr := math.Hypot(ex, ey)
			ex, ey = ex/rr, ey/rr
			// Swept angle around the fovea since the disc (0 at the disc).
			phi := math.Acos(clamp(-(ex*t.ux + ey*t.uy), -1, 1))
			if phi > 0.8*math.Pi {
				arcSide = 0 // end of the arcade: continue as a free vessel
			} else {
				target := t.dm * (arcR + 0.25*phi/math.Pi)
				sg := t.supSign * arcSide
				tx, ty := -ey*sg, ex*sg
				k := 3 * (rr - target) / t.dm
				want := math.Atan2(ty-k*ey, tx-k*ex)
				h += 0.4 * angDiff(want, h)
			}
		} else {
			// Free vessels drift away from the disc and avoid the fovea.
			ax, ay := x-t.dx, y-t.dy
			h += 0.04 * angDiff(math.Atan2(ay, ax), h)
			fx, fy := x-t.mx, y-t.my
			fd := math.Hypot(fx, fy)
			if fd < t.fovea {
				return
			}
			if fd < 2.2*t.fovea {
				h += 0.25 * angDiff(math.Atan2(fy, fx), h) * (2.2*t.fovea - fd) / t.fovea
			}
		}
		turn = 0.85*turn + 0.055*r.NormFloat64()
		h += turn
		nx, ny := x+stepLen*math.Cos(h), y+stepLen*math.Sin(h)
		nw := w * 0.991
		t.segs = append(t.segs, seg{x, y, nx, ny, w / 2, nw / 2, vein})
		x, y, w = nx, ny, nw
		if cx, cy := x-fovCX, y-fovCY; cx*cx+cy*cy > (fovR+0.02)*(fovR+0.02) {
			return
		}
		gap -= stepLen
		if gap <= 0 && depth < 2 {
			gap = t.branchGap(depth, arcSide != 0)
			cw := w * (0.55 + 0.2*r.Float64())
			if cw < minWidth {
				continue
			}
			da := 0.5 + 0.5*r.Float64()
			var ch, cl float64
			if arcSide != 0 {
				// Alternate branches into the macula (short) and out to the periphery.
				inward = !inward
				sg := 1.0
				if angDiff(math.Atan2(t.my-y, t.mx-x), h) < 0 {
					sg = -1
				}
				if inward {
					ch, cl = h+sg*da, 0.1+0.12*r.Float64()
					cw = math.Min(cw, 0.013)
				} else {
					ch, cl = h-sg*da, 0.2+0.25*r.Float64()
				}
			} else {
				sg := 1.0
				if r.IntN(2) == 0 {
					sg = -1
				}
				ch, cl = h+sg*da, (length-s)*(0.4+0.4*r.Float64())
				h -= sg * 0.15 // the parent bends away from its branch
			}
			t.grow(x, y, ch, cw, vein, cl, depth+1, 0, 0)
			w *= 0.9 // Murray-like narrowing of the parent after a branch
		}
	}
}

func (t *tree) branchGap(depth int, arcade bool) float64 {
	if arcade {
		return 0.06 + 0.06*t.rng.Float64()
	}
	return 0.08 + 0.10*t.rng.Float64() + 0.04*float64(depth)
}
