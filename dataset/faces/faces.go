// Package faces renders procedural cartoon characters ("anime-like faces")
// whose appearance is fully determined by a small set of named, continuous
// factors (smile, bangs, head pose, hair colour and length, ...).
//
// It exists so that GANs can be trained on a face-like image distribution whose
// ground truth is known: because every image comes with the exact factor values
// that produced it, a latent-space edit ("make her smile") can be measured by
// how much it moves the intended factor and how little it moves the others,
// instead of being judged by eye. Render is deterministic and cheap (well under
// a millisecond per 32×32 face), so the dataset is generated on the fly and
// never stored.
//
// The package registers itself with latentedit/dataset under the name "faces".
package faces

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"

	"latentedit/dataset"
)

// Factors are the ground-truth generative factors of one face. The ranges are
// part of the contract: Render clamps (or wraps, for hues) values outside them,
// and Draw only produces values inside them.
type Factors struct {
	Smile      float64 // [-1, 1]: frown → neutral line → smile → open smile showing teeth
	Bangs      float64 // [0, 1]: bare forehead → fringe reaching the eyebrows
	Pitch      float64 // [-1, 1]: head tilted down → up
	Yaw        float64 // [-1, 1]: head turned to the viewer's left → right
	HairColour float64 // hue in [0, 1), always saturated
	HairLength float64 // [0, 1]: cropped → past the shoulders to the image bottom
	SkinTone   float64 // [0, 1]: pale → dark (nuisance factor)
	EyeColour  float64 // iris hue in [0, 1) (nuisance factor)
	Background float64 // background hue in [0, 1), always pale (nuisance factor)
	FaceWidth  float64 // [0, 1]: narrow → wide face
}

// factorInfo describes one factor: its name, range and whether it is a hue
// (cyclic: lo and hi are the same colour, so sweeps must not end on hi).
type factorInfo struct {
	name   string
	lo, hi float64
	cyclic bool
	get    func(*Factors) *float64
}

// factorTable is the single source of truth for names, order and ranges, so
// FactorNames, Vector, FromVector, Sweep and Draw cannot drift apart.
var factorTable = []factorInfo{
	{"smile", -1, 1, false, func(f *Factors) *float64 { return &f.Smile }},
	{"bangs", 0, 1, false, func(f *Factors) *float64 { return &f.Bangs }},
	{"pitch", -1, 1, false, func(f *Factors) *float64 { return &f.Pitch }},
	{"yaw", -1, 1, false, func(f *Factors) *float64 { return &f.Yaw }},
	{"hair_colour", 0, 1, true, func(f *Factors) *float64 { return &f.HairColour }},
	{"hair_length", 0, 1, false, func(f *Factors) *float64 { return &f.HairLength }},
	{"skin_tone", 0, 1, false, func(f *Factors) *float64 { return &f.SkinTone }},
	{"eye_colour", 0, 1, true, func(f *Factors) *float64 { return &f.EyeColour }},
	{"background", 0, 1, true, func(f *Factors) *float64 { return &f.Background }},
	{"face_width", 0, 1, false, func(f *Factors) *float64 { return &f.FaceWidth }},
}

// NumFactors is the length of Factors.Vector.
const NumFactors = 10

// FactorNames returns the factor names in label order: smile, bangs, pitch,
// yaw, hair_colour, hair_length, skin_tone, eye_colour, background, face_width.
func FactorNames() []string {
	names := make([]string, len(factorTable))
	for i, fi := range factorTable {
		names[i] = fi.name
	}
	return names
}

func lookup(name string) (factorInfo, error) {
	for _, fi := range factorTable {
		if fi.name == name {
			return fi, nil
		}
	}
	return factorInfo{}, fmt.Errorf("faces: unknown factor %q (known: %v)", name, FactorNames())
}

// FactorRange reports the range of a factor. Cyclic factors are hues: hi is
// excluded because it is the same colour as lo.
func FactorRange(name string) (lo, hi float64, cyclic bool, err error) {
	fi, err := lookup(name)
	if err != nil {
		return 0, 0, false, err
	}
	return fi.lo, fi.hi, fi.cyclic, nil
}

// SweepValues returns n evenly spaced values covering a factor's range, from
// lo to hi inclusive; for hues the values are lo + k/n so that the sweep visits
// n distinct colours instead of ending where it started.
func SweepValues(name string, n int) ([]float64, error) {
	fi, err := lookup(name)
	if err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("faces: SweepValues needs n >= 1, got %d", n)
	}
	v := make([]float64, n)
	for k := range v {
		switch {
		case fi.cyclic:
			v[k] = fi.lo + (fi.hi-fi.lo)*float64(k)/float64(n)
		case n == 1:
			v[k] = (fi.lo + fi.hi) / 2
		default:
			v[k] = fi.lo + (fi.hi-fi.lo)*float64(k)/float64(n-1)
		}
	}
	return v, nil
}

// Vector returns the factors in FactorNames order, the label layout of the
// "faces" dataset.
func (f Factors) Vector() []float32 {
	v := make([]float32, len(factorTable))
	for i, fi := range factorTable {
		v[i] = float32(*fi.get(&f))
	}
	return v
}

// FromVector is the inverse of Vector.
func FromVector(v []float32) (Factors, error) {
	var f Factors
	if len(v) != len(factorTable) {
		return f, fmt.Errorf("faces: FromVector needs %d values, got %d", len(factorTable), len(v))
	}
	for i, fi := range factorTable {
		*fi.get(&f) = float64(v[i])
	}
	return f, nil
}

// Get returns the value of the named factor.
func (f Factors) Get(name string) (float64, error) {
	fi, err := lookup(name)
	if err != nil {
		return 0, err
	}
	return *fi.get(&f), nil
}

// Set changes the named factor.
func (f *Factors) Set(name string, v float64) error {
	fi, err := lookup(name)
	if err != nil {
		return err
	}
	*fi.get(f) = v
	return nil
}

// Neutral is a centred reference face (straight pose, neutral mouth, medium
// hair) used as the fixed base of factor sweeps.
func Neutral() Factors {
	return Factors{
		Smile: 0, Bangs: 0.5, Pitch: 0, Yaw: 0,
		HairColour: 0.6, HairLength: 0.5, SkinTone: 0.25,
		EyeColour: 0.3, Background: 0.12, FaceWidth: 0.5,
	}
}

// Sweep returns copies of base in which only the named factor varies over
// values; it is how edit-quality metrics and the docs grid build their rows.
func Sweep(base Factors, factor string, values []float64) ([]Factors, error) {
	fi, err := lookup(factor)
	if err != nil {
		return nil, err
	}
	out := make([]Factors, len(values))
	for i, v := range values {
		out[i] = base
		*fi.get(&out[i]) = v
	}
	return out, nil
}

// Copula correlations of the correlated draw. A Gaussian copula with uniform
// marginals has Pearson correlation (6/π)·asin(ρ/2) between the uniforms, so ρ
// is chosen to hit the target correlation of the factors themselves:
//
//	corr(hair_length, bangs) = 0.5 → ρ = 2·sin(π·0.5/6) ≈ 0.518
//	corr(smile, pitch)       = 0.3 → ρ = 2·sin(π·0.3/6) ≈ 0.313
//
// Why: real face data sets are not a product of independent factors (long hair
// tends to come with a fringe, people smile with the chin up), and an edit
// method that only works on a rectangular, independent factor space would look
// better here than it does in practice. With these dependences the data
// occupies a curved, non-box region of factor space, so a latent direction
// that naively follows the data's main axes will leak one factor into the
// other — exactly what disentanglement metrics should catch. Every other pair
// of factors stays independent, and each marginal stays uniform over its range
// in both modes, so label ranges and sweeps mean the same thing either way.
var (
	rhoLengthBangs = 2 * math.Sin(math.Pi*0.5/6)
	rhoSmilePitch  = 2 * math.Sin(math.Pi*0.3/6)
)

// Draw draws one set of factors. With correlated=false every factor is
// independent and uniform over its range. With correlated=true the marginals
// are the same but hair_length/bangs (≈0.5) and smile/pitch (≈0.3) are
// correlated through a Gaussian copula (see rhoLengthBangs).
func Draw(r *rand.Rand, correlated bool) Factors {
	var u [NumFactors]float64
	if !correlated {
		for i := range u {
			u[i] = r.Float64()
		}
	} else {
		var z [NumFactors]float64
		for i := range z {
			z[i] = r.NormFloat64()
		}
		// Indices follow factorTable: 0 smile, 1 bangs, 2 pitch, 5 hair_length.
		z[1] = rhoLengthBangs*z[5] + math.Sqrt(1-rhoLengthBangs*rhoLengthBangs)*z[1]
		z[0] = rhoSmilePitch*z[2] + math.Sqrt(1-rhoSmilePitch*rhoSmilePitch)*z[0]
		for i := range u {
			u[i] = normCDF(z[i])
		}
	}
	var f Factors
	for i, fi := range factorTable {
		*fi.get(&f) = fi.lo + (fi.hi-fi.lo)*u[i]
	}
	return f
}

// normCDF maps a standard normal to [0, 1), never returning 1 so that hues
// stay inside their half-open range.
func normCDF(z float64) float64 {
	u := 0.5 * math.Erfc(-z/math.Sqrt2)
	if u >= 1 {
		u = math.Nextafter(1, 0)
	}
	if u < 0 {
		u = 0
	}
	return u
}

const (
	defaultN    = 60000
	defaultSize = 32
)

func init() {
	dataset.Register("faces", open)
}

// Faces is the "faces" dataset: N procedurally drawn characters.
type Faces struct {
	n          int
	seed       int64
	size       int
	correlated bool
}

var _ dataset.Dataset = (*Faces)(nil)

func open(opt dataset.Options) (dataset.Dataset, error) {
	return New(opt)
}

// New opens the faces dataset directly (dataset.Open("faces", opt) does the
// same). Size may be 0 (32), 32 or 64: other sizes are refused because the
// drawing is tuned for them and models are built for fixed shapes.
func New(opt dataset.Options) (*Faces, error) {
	n := opt.N
	if n == 0 {
		n = defaultN
	}
	if n < 0 {
		return nil, fmt.Errorf("faces: N must be >= 0, got %d", opt.N)
	}
	size := opt.Size
	if size == 0 {
		size = defaultSize
	}
	if size != 32 && size != 64 {
		return nil, fmt.Errorf("faces: size must be 32 or 64, got %d", opt.Size)
	}
	return &Faces{n: n, seed: opt.Seed, size: size, correlated: !opt.NoCorrelation}, nil
}

// Name implements dataset.Dataset.
func (d *Faces) Name() string { return "faces" }

// Len implements dataset.Dataset.
func (d *Faces) Len() int { return d.n }

// Shape implements dataset.Dataset.
func (d *Faces) Shape() (h, w, c int) { return d.size, d.size, 3 }

// Factors implements dataset.Dataset.
func (d *Faces) Factors() []string { return FactorNames() }

// FactorsAt returns the factors of sample i without rendering it, for label-only
// statistics.
func (d *Faces) FactorsAt(i int) (Factors, error) {
	if i < 0 || i >= d.n {
		return Factors{}, fmt.Errorf("faces: index %d out of range [0, %d)", i, d.n)
	}
	// The per-sample generator depends only on (seed, i), so any sample can be
	// produced alone, in any order, on any worker.
	r := rand.New(rand.NewPCG(uint64(d.seed), uint64(i)))
	return Draw(r, d.correlated), nil
}

// Sample implements dataset.Dataset: image i and its factors in FactorNames order.
func (d *Faces) Sample(i int) (image.Image, []float32, error) {
	f, err := d.FactorsAt(i)
	if err != nil {
		return nil, nil, err
	}
	return Render(f, d.size), f.Vector(), nil
}
