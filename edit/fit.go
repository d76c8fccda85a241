package edit

import (
	"fmt"

	"latentedit/generator"
)

// FitClosedForm fits a closed-form editor of method "ganspace" or "sefa"
// with k directions on the generator m. GANSpace takes the PCA of samples
// latents of seed (the first is Latent(seed)): of the latents themselves
// (option mode=latent), or of G's first-layer activations regressed back to
// z (mode=activations, the default). SeFa takes the eigenvectors of the
// first layer's WᵀW and samples nothing.
func FitClosedForm(m *generator.Model, method string, k, samples int, seed int64, opt Options) (*Linear, error) {
	l, err := fitClosedForm(m, method, k, samples, seed, opt)
	if err != nil {
		return nil, err
	}
	l.setSpace(m.Space())
	return l, nil
}

func fitClosedForm(m *generator.Model, method string, k, samples int, seed int64, opt Options) (*Linear, error) {
	switch method {
	case "sefa":
		if _, err := Resolve(method, opt, SeFaOptions{}); err != nil {
			return nil, err
		}
		w, err := m.FirstLayerWeights()
		if err != nil {
			return nil, err
		}
		return NewSeFa(w, k, m.Backend())
	case "ganspace":
		g, err := Resolve(method, opt, DefaultGANSpace())
		if err != nil {
			return nil, err
		}
		// In w and w+ the codes are what the synthesis reads: their own
		// principal axes are GANSpace's there (Härkönen et al. take PCA in W).
		if _, set := opt["mode"]; !set && m.Space() != generator.SpaceZ {
			g.Mode = "latent"
		}
		if samples < 2 {
			return nil, fmt.Errorf("edit: ganspace: %d samples are too few", samples)
		}
		z := m.Latents(seed, samples)
		if g.Mode == "latent" {
			return NewGANSpace(z, k, m.Backend())
		}
		act, err := m.FirstLayerActivations(z)
		if err != nil {
			return nil, err
		}
		return NewGANSpaceActivations(z, act, k, m.Backend())
	}
	return nil, fmt.Errorf("edit: %q is not a closed-form method (ganspace, sefa)", method)
}
