package evaluate

import (
	"fmt"
	"math"

	"latentedit/edit"
	"latentedit/generator"
)

// CommutativityError is the commutativity of an editor's edits measured in
// the three spaces of DESIGN.md, averaged over all pairs k≠l of directions
// and the latents: the two orders φ_k^t∘φ_l^s and φ_l^s∘φ_k^t compared
//   - in latent space, ‖Δz‖/‖z‖;
//   - in image space, mean |Δpixel| on a [0, 1] scale;
//   - per attribute, the mean |Δ| of the oracle's reading of each factor
//     (hues on the circle), and its mean over factors.
type CommutativityError struct {
	Latent        float64            `json:"latent"`
	Image         float64            `json:"image"`
	Attribute     map[string]float64 `json:"attribute"`
	AttributeMean float64            `json:"attribute_mean"`
	Pairs         int                `json:"pairs"`
	Latents       int                `json:"latents"`
	T             float32            `json:"t"`
	S             float32            `json:"s"`
}

// commuted returns, for every latent and pair k<l, the results of the two
// compositions φ_k^t∘φ_l^s and φ_l^s∘φ_k^t, plus each latent's norm. Every
// composition is two separate edits, each a batch over all latents and
// pairs. It deliberately does not use edit.Apply: the curvilinear editor's
// sequence form adds both shifts in V and maps back once, which commutes
// exactly by construction; composing the two edits is what the definition
// says, and it shows the flow's numerical round-trip error (as the study
// measured it).
func commuted(e edit.Editor, zs [][]float32, t, s float32) (ab, ba [][]float32, norms []float64, err error) {
	// Rows [0, n) are the order l then k (ab), rows [n, 2n) k then l (ba).
	var rows [][]float32
	var first, second []edit.Step
	for _, z := range zs {
		nz := 0.0
		for _, v := range z {
			nz += float64(v) * float64(v)
		}
		nz = math.Sqrt(nz)
		for k := 0; k < e.K(); k++ {
			for l := k + 1; l < e.K(); l++ {
				rows = append(rows, z)
				first, second = append(first, edit.Step{K: l, T: s}), append(second, edit.Step{K: k, T: t})
				norms = append(norms, nz)
			}
		}
	}
	n := len(rows)
	if n == 0 {
		return nil, nil, nil, fmt.Errorf("commutativity: need at least two directions and one latent")
	}
	rows = append(rows, rows...)
	first, second = append(first, second...), append(second, first...)
	mid, err := e.EditBatch(rows, first)
	if err != nil {
		return nil, nil, nil, err
	}
	out, err := e.EditBatch(mid, second)
	if err != nil {
		return nil, nil, nil, err
	}
	return out[:n], out[n:], norms, nil
}

// Commutativity is the mean latent-space commutativity error relative to
// ‖z‖: E‖φ_k^t∘φ_l^s(z) − φ_l^s∘φ_k^t(z)‖ / ‖z‖ over all pairs k≠l. It needs
// no generator, so it also serves editors on their own.
func Commutativity(e edit.Editor, zs [][]float32, t, s float32) (float64, error) {
	ab, ba, norms, err := commuted(e, zs, t, s)
	if err != nil {
		return 0, err
	}
	return latentGap(ab, ba, norms), nil
}

func latentGap(ab, ba [][]float32, norms []float64) float64 {
	sum := 0.0
	for i := range ab {
		d := 0.0
		for j := range ab[i] {
			x := float64(ab[i][j] - ba[i][j])
			d += x * x
		}
		sum += math.Sqrt(d) / norms[i]
	}
	return sum / float64(len(ab))
}

// MeasureCommutativity measures the commutativity error of e in latent,
// image and attribute space (see CommutativityError) on the latents zs.
func MeasureCommutativity(m *generator.Model, e edit.Editor, o *Oracle, zs [][]float32, t, s float32) (*CommutativityError, error) {
	ab, ba, norms, err := commuted(e, zs, t, s)
	if err != nil {
		return nil, err
	}
	n := len(ab)
	res := &CommutativityError{Latent: latentGap(ab, ba, norms), Attribute: map[string]float64{},
		Pairs: e.K() * (e.K() - 1) / 2, Latents: len(zs), T: t, S: s}
	pa, err := m.GenerateFloats(flatten(ab), n)
	if err != nil {
		return nil, err
	}
	pb, err := m.GenerateFloats(flatten(ba), n)
	if err != nil {
		return nil, err
	}
	for i := range pa {
		res.Image += math.Abs(float64(pa[i]-pb[i])) / 2 // [-1,1] → [0,1] scale
	}
	res.Image /= float64(len(pa))
	fa, err := o.Predict(pa, n)
	if err != nil {
		return nil, err
	}
	fb, err := o.Predict(pb, n)
	if err != nil {
		return nil, err
	}
	for f, name := range o.Factors {
		sum := 0.0
		for i := 0; i < n; i++ {
			sum += math.Abs(FactorDiff(name, fa[i][f], fb[i][f]))
		}
		res.Attribute[name] = sum / float64(n)
		res.AttributeMean += res.Attribute[name] / float64(len(o.Factors))
	}
	return res, nil
}

// FactorDiff is a − b for factor name, on the circle for hues (0.95 − 0.05
// is −0.1, not 0.9).
func FactorDiff(name string, a, b float64) float64 {
	d := a - b
	if cyclic[name] {
		d -= math.Round(d)
	}
	return d
}

func flatten(zs [][]float32) []float32 {
	var out []float32
	for _, z := range zs {
		out = append(out, z...)
	}
	return out
}

// FactorScale is the spread of a factor in the oracle's training data, the
// unit in which identity changes are compared across factors: the standard
// deviation for ordinary factors, and 1/√12 (a uniform hue's) for hues.
func (o *Oracle) FactorScale(name string) float64 {
	j := 0
	for _, f := range o.Factors {
		if f == name {
			if cyclic[f] {
				return 1 / math.Sqrt(12)
			}
			return o.Std[j]
		}
		if cyclic[f] {
			j += 2
		} else {
			j++
		}
	}
	return math.NaN()
}

// ReadFactors renders the latents zs and reads them with the oracle, in
// fixed chunks of ReadChunk (so a latent's reading does not depend on the
// call): the one way latents are labelled, for evaluation, InterFaceGAN fits
// and pseudo-cases.
func ReadFactors(m *generator.Model, o *Oracle, zs [][]float32) ([][]float64, error) {
	pix, err := m.GenerateChunked(zs, ReadChunk)
	if err != nil {
		return nil, err
	}
	return o.PredictChunked(pix, len(zs))
}

// Identity measures how well an edit keeps the rest of the image: each
// latent is edited along direction k by t and the oracle reads the result;
// before is the oracle's reading of the unedited latents (ReadFactors), read
// once by callers that measure many directions on the same latents.
// target is the mean change of factor f (in FactorScale units, signed);
// nuisance is the mean |change| of every other factor in the same units.
func Identity(m *generator.Model, e edit.Editor, o *Oracle, zs [][]float32, before [][]float64, k, f int, t float32) (target, nuisance float64, err error) {
	if f < 0 || f >= len(o.Factors) {
		return 0, 0, fmt.Errorf("identity: factor %d of %d", f, len(o.Factors))
	}
	if len(before) != len(zs) {
		return 0, 0, fmt.Errorf("identity: %d readings for %d latents", len(before), len(zs))
	}
	edited, err := e.EditBatch(zs, edit.Repeat(edit.Step{K: k, T: t}, len(zs)))
	if err != nil {
		return 0, 0, err
	}
	n := len(zs)
	after, err := ReadFactors(m, o, edited)
	if err != nil {
		return 0, 0, err
	}
	for i := 0; i < n; i++ {
		for q, name := range o.Factors {
			d := FactorDiff(name, after[i][q], before[i][q]) / o.FactorScale(name)
			if q == f {
				target += d / float64(n)
			} else {
				nuisance += math.Abs(d) / float64(n*(len(o.Factors)-1))
			}
		}
	}
	return target, nuisance, nil
}

// ClassKept is the fraction of the latents zs whose class, read by the
// classifier c, is the same after an edit along direction k by t as before
// (before: c's classes of the unedited latents). On a dataset of classes
// the oracle reads only the measurable factors, so an edit that turns a 2
// into an 8 while thickening it would pass Identity unseen; this is the
// measure that sees it.
func ClassKept(m *generator.Model, e edit.Editor, c *Classifier, zs [][]float32, before []int, k int, t float32) (float64, error) {
	if len(before) != len(zs) || len(zs) == 0 {
		return 0, fmt.Errorf("class kept: %d classes for %d latents", len(before), len(zs))
	}
	edited, err := e.EditBatch(zs, edit.Repeat(edit.Step{K: k, T: t}, len(zs)))
	if err != nil {
		return 0, err
	}
	after, err := Classes(m, c, edited)
	if err != nil {
		return 0, err
	}
	kept := 0
	for i := range after {
		if after[i] == before[i] {
			kept++
		}
	}
	return float64(kept) / float64(len(zs)), nil
}

// Classes renders the latents zs and returns the classifier's class of each.
func Classes(m *generator.Model, c *Classifier, zs [][]float32) ([]int, error) {
	pix, err := m.GenerateChunked(zs, ReadChunk)
	if err != nil {
		return nil, err
	}
	_, read, err := c.Read(pix, len(zs))
	if err != nil {
		return nil, err
	}
	out := make([]int, len(read))
	for i, r := range read {
		out[i] = int(r[0])
	}
	return out, nil
}
