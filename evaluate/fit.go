package evaluate

import (
	"fmt"

	"latentedit/edit"
	"latentedit/generator"
)

// FitInterFaceGAN fits InterFaceGAN boundaries on the generator m: n latents
// of seed (the first is Latent(seed)) are labelled by the oracle through
// ReadFactors and one boundary is fitted per factor (fit.Factors, or all the
// oracle's), with fit's solver, regularisation and conditions. progress (may
// be nil) is called as latents are labelled. pseudocase.FitInterFaceGAN adds
// the segmenter's structure labels to the same readings.
func FitInterFaceGAN(m *generator.Model, o *Oracle, n int, seed int64, fit edit.InterFaceGANFitOptions, progress func(done, total int)) (*edit.Linear, error) {
	only, opt, err := fit.Boundaries()
	if err != nil {
		return nil, fmt.Errorf("interfacegan: %w", err)
	}
	if n < 10 {
		return nil, fmt.Errorf("interfacegan: %d latents are too few", n)
	}
	factors := o.Factors
	if only != nil {
		factors = only
	}
	cols := make([]int, len(factors))
	for i, f := range factors {
		cols[i] = -1
		for j, g := range o.Factors {
			if g == f {
				cols[i] = j
			}
		}
		if cols[i] < 0 {
			return nil, fmt.Errorf("interfacegan: factor %q is not one of the oracle's %v", f, o.Factors)
		}
	}
	zs := m.Latents(seed, n)
	labels := make([][]float32, 0, n)
	const block = 256 // latents per progress report
	for s := 0; s < n; s += block {
		e := min(n, s+block)
		read, err := ReadFactors(m, o, zs[s:e])
		if err != nil {
			return nil, err
		}
		for _, r := range read {
			row := make([]float32, len(cols))
			for j, c := range cols {
				row[j] = float32(r[c])
			}
			labels = append(labels, row)
		}
		if progress != nil {
			progress(e, n)
		}
	}
	e, err := edit.NewInterFaceGAN(zs, labels, factors, opt, m.Backend())
	if err != nil {
		return nil, err
	}
	return e, edit.SetSpace(e, m.Space())
}
