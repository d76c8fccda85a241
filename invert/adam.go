package invert

import "math"

// Adam is Adam (β 0.9, 0.999, ε 1e-8) on a vector held on the host: the
// latents of a fit are an input of the compiled loss, not a variable of
// the model's shared context, so one executable serves every job at once.
// The inversion and pseudocase's region-constrained refinement step with it.
type Adam struct {
	LR     float64
	m1, m2 []float64
	t      int
}

// Step moves z against grad (both of one length, the same every call).
func (a *Adam) Step(z, grad []float32) {
	const b1, b2, eps = 0.9, 0.999, 1e-8
	if a.m1 == nil {
		a.m1, a.m2 = make([]float64, len(z)), make([]float64, len(z))
	}
	a.t++
	c1 := 1 - math.Pow(b1, float64(a.t))
	c2 := 1 - math.Pow(b2, float64(a.t))
	for i, g := range grad {
		a.m1[i] = b1*a.m1[i] + (1-b1)*float64(g)
		a.m2[i] = b2*a.m2[i] + (1-b2)*float64(g)*float64(g)
		z[i] -= float32(a.LR * (a.m1[i] / c1) / (math.Sqrt(a.m2[i]/c2) + eps))
	}
}
