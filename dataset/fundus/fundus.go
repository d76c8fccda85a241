// Package fundus renders procedural retinal (fundus) photographs with lesions
// and per-pixel ground-truth masks.
//
// It exists to train a GAN on fundus-like images whose lesion factors are known
// exactly, and to make "pseudo-cases": the same eye (optic disc, macula, vessel
// tree, pigment) rendered again with lesions added. For that second use the
// renderer keeps a strict separation between structure and lesions: every
// structural element (vessel geometry, background texture) is derived only from
// the structure fields of Params, and every lesion only touches the pixels
// reported in its lesion mask. Adding a lesion therefore leaves both the image
// and the vessel mask bit-identical outside the lesion mask, which is what lets
// a pseudo-case be compared (or composited) pixel by pixel with its healthy
// original.
//
// Geometry is expressed in image coordinates in [0,1]² (X to the right, Y down)
// so that the same Params render the same eye at 64×64 and 128×128.
package fundus

import (
	"math"
	"math/rand/v2"
)

// Point is a position in image coordinates: X to the right, Y down, both in [0,1].
type Point struct{ X, Y float64 }

// Params describes one fundus photograph: the structure of the eye and its lesions.
//
// Zero values of structure fields are replaced by typical values (see
// DefaultParams), so a partially filled Params still renders a plausible eye.
type Params struct {
	// --- Structure: never influenced by the lesion fields below. ---

	// Disc is the centre of the optic disc.
	Disc Point
	// DiscRadius is the optic disc radius as a fraction of the image side
	// (about 0.068–0.082; a real 45° field gives about 0.065, exaggerated a
	// little so the disc and its cup stay readable at 64×64).
	DiscRadius float64
	// RightEye selects the eye. In a right eye the disc lies on the right of the
	// image and the macula (temporal side) to its left; in a left eye it is mirrored.
	RightEye bool
	// MaculaDist is the disc-centre to fovea distance in disc diameters (about 2.5),
	// measured towards the temporal side.
	MaculaDist float64
	// MaculaDrop is how far the fovea lies below the disc centre, in disc
	// diameters (usually slightly positive: the fovea sits a little lower).
	MaculaDrop float64
	// VesselSeed seeds the vessel tree and the background texture.
	VesselSeed uint64
	// Pigment is the fundus pigmentation: 0 light orange, 1 dark brownish red.
	Pigment float64
	// Brightness is the exposure multiplier (about 0.85–1.15; 0 means 1).
	Brightness float64

	// --- Lesions. ---

	// Detachment is the extent of a retinal detachment in [0,1]; 0 means none.
	Detachment float64
	// DetachmentAngle is where the detached region lies, in degrees around the
	// image centre: 0 is image right (temporal for a left eye), 90 is up.
	DetachmentAngle float64
	// Haemorrhages are the centres of small dark-red blots (dot/blot or
	// flame-shaped), in image coordinates; their number is len(Haemorrhages).
	Haemorrhages []Point
	// CupToDisc is the cup-to-disc radius ratio in [0.2,0.9]; a large cup is the
	// classic sign of glaucoma. Values outside the range are clamped.
	CupToDisc float64
}

// Field of view: the circular aperture of the fundus camera, centred in the image.
const (
	fovCX = 0.5
	fovCY = 0.5
	fovR  = 0.47
)

// FieldOfView is the camera's circular aperture in image coordinates:
// centre and radius.
func FieldOfView() (cx, cy, r float64) { return fovCX, fovCY, fovR }

// DetachmentRegion is the disc, in image coordinates, whose part inside the
// field of view a detachment of extent (0, 1] at angle (degrees, 0 = image
// right, 90 = up) covers: centred beyond the aperture's rim in the
// detachment's direction, growing into the field with the extent. The
// renderer draws its wavy border within ±0.016 of this circle.
func DetachmentRegion(extent, angle float64) (cx, cy, r float64) {
	th := angle * math.Pi / 180
	ax, ay := math.Cos(th), -math.Sin(th)
	const rho = 0.55 // how far beyond the rim the centre sits
	return fovCX + ax*(fovR+rho), fovCY + ay*(fovR+rho), rho + fovR*(0.1+1.2*extent)
}

// HaemorrhageRegion is the disc, in image coordinates, that holds every
// blot Draw places: centres uniform within 0.38 of the field's centre, and
// a blot reaches at most 0.06 beyond its centre (a flame's half-length).
func HaemorrhageRegion() (cx, cy, r float64) { return fovCX, fovCY, haemSpread + 0.06 }

// haemSpread is the radius within which Draw places haemorrhage centres.
const haemSpread = 0.38

// DefaultParams is a typical healthy left eye; it is also what zero structure
// fields fall back to.
func DefaultParams() Params {
	return Params{
		Disc:       Point{0.31, 0.5},
		DiscRadius: 0.075,
		MaculaDist: 2.5,
		MaculaDrop: 0.2,
		VesselSeed: 1,
		Pigment:    0.4,
		Brightness: 1,
		CupToDisc:  0.3,
	}
}

// normalized fills zero structure fields with defaults and clamps the rest, so
// Render never has to deal with degenerate values.
func (p Params) normalized() Params {
	d := DefaultParams()
	if p.Disc == (Point{}) {
		p.Disc = d.Disc
		if p.RightEye {
			p.Disc.X = 1 - p.Disc.X
		}
	}
	if p.DiscRadius <= 0 {
		p.DiscRadius = d.DiscRadius
	}
	p.DiscRadius = clamp(p.DiscRadius, 0.03, 0.12)
	if p.MaculaDist <= 0 {
		p.MaculaDist = d.MaculaDist
	}
	if p.Brightness <= 0 {
		p.Brightness = 1
	}
	p.Pigment = clamp(p.Pigment, 0, 1)
	p.Detachment = clamp(p.Detachment, 0, 1)
	p.DetachmentAngle = math.Mod(p.DetachmentAngle, 360)
	if p.DetachmentAngle < 0 {
		p.DetachmentAngle += 360
	}
	p.CupToDisc = clamp(p.CupToDisc, 0.2, 0.9)
	return p
}

// temporal is +1 when the macula lies to the right of the disc (left eye), -1 otherwise.
func (p Params) temporal() float64 {
	if p.RightEye {
		return -1
	}
	return 1
}

// MaculaCenter is the fovea position implied by the structure fields.
func (p Params) MaculaCenter() Point {
	p = p.normalized()
	dd := 2 * p.DiscRadius
	return Point{p.Disc.X + p.temporal()*p.MaculaDist*dd, p.Disc.Y + p.MaculaDrop*dd}
}

// WithoutLesions returns the same structure with no lesions and a normal cup
// (the healthy original of a pseudo-case).
func (p Params) WithoutLesions() Params {
	p.Detachment, p.DetachmentAngle, p.Haemorrhages = 0, 0, nil
	p.CupToDisc = 0.3
	return p
}

// Draw draws a random eye: structure first, then lesions, so that the structure
// part of the random stream does not depend on how lesions are drawn.
//
// A detachment is present in about 40% of images (extent U(0.2,1), angle
// U(0,360)); about half the images have no haemorrhage, the others 1–6; the
// cup-to-disc ratio is U(0.2,0.8).
func Draw(r *rand.Rand) Params {
	var p Params
	p.RightEye = r.IntN(2) == 1
	p.DiscRadius = 0.068 + 0.014*r.Float64()
	p.MaculaDist = 2.3 + 0.4*r.Float64()
	p.MaculaDrop = 0.3 * r.Float64()
	// Roughly centred between disc and fovea, as in a standard 45° photograph
	// that shows both.
	off := p.MaculaDist*p.DiscRadius + 0.06*(r.Float64()-0.5)
	if p.RightEye {
		p.Disc.X = 0.5 + off
	} else {
		p.Disc.X = 0.5 - off
	}
	p.Disc.Y = 0.5 + 0.08*(r.Float64()-0.5)
	p.VesselSeed = r.Uint64()
	p.Pigment = r.Float64()
	p.Brightness = 0.85 + 0.3*r.Float64()

	p.CupToDisc = 0.2 + 0.6*r.Float64()
	if r.Float64() < 0.4 {
		p.Detachment = 0.2 + 0.8*r.Float64()
		p.DetachmentAngle = 360 * r.Float64()
	}
	if r.IntN(2) == 1 {
		n := 1 + r.IntN(6)
		for range n {
			// Uniform in a disc slightly inside the field of view, so every blot is visible.
			for {
				x, y := 2*r.Float64()-1, 2*r.Float64()-1
				if x*x+y*y <= 1 {
					p.Haemorrhages = append(p.Haemorrhages, Point{fovCX + haemSpread*x, fovCY + haemSpread*y})
					break
				}
			}
		}
	}
	return p
}

// FactorNames names the columns of Params.Vector. The detachment angle is
// encoded as extent·cos and extent·sin so the labels are continuous (no jump
// at 360°) and vanish when there is no detachment.
func FactorNames() []string {
	return []string{"detachment", "detachment_cos", "detachment_sin", "haemorrhages", "cup_to_disc"}
}

// Vector returns the lesion factors in the order of FactorNames. The
// haemorrhage entry is the raw count (0–6 for drawn samples).
func (p Params) Vector() []float32 {
	q := p.normalized()
	a := q.DetachmentAngle * math.Pi / 180
	return []float32{
		float32(q.Detachment),
		float32(q.Detachment * math.Cos(a)),
		float32(q.Detachment * math.Sin(a)),
		float32(len(q.Haemorrhages)),
		float32(q.CupToDisc),
	}
}

func clamp(v, lo, hi float64) float64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

func smoothstep(e0, e1, x float64) float64 {
	t := clamp((x-e0)/(e1-e0), 0, 1)
	return t * t * (3 - 2*t)
}
