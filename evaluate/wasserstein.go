package evaluate

import (
	"math"
	"slices"
	"sort"
)

// Wasserstein1 is the 1-Wasserstein (earth mover's) distance between the
// empirical distributions of a and b on the line: ∫|F_a(t) − F_b(t)| dt over
// their CDFs, exact (the CDFs are steps, so the integral is a sum over the
// merged sorted values). The sets may differ in size; it is 0 when either
// is empty.
func Wasserstein1(a, b []float64) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	x, y := slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	na, nb := float64(len(x)), float64(len(y))
	i, j := 0, 0
	prev, w := math.Min(x[0], y[0]), 0.0
	for i < len(x) || j < len(y) {
		t := nextBreak(x, y, i, j)
		// On [prev, t) the CDFs are i/na and j/nb.
		w += math.Abs(float64(i)/na-float64(j)/nb) * (t - prev)
		for i < len(x) && x[i] == t {
			i++
		}
		for j < len(y) && y[j] == t {
			j++
		}
		prev = t
	}
	return w
}

// nextBreak is the smaller of x[i] and y[j] (one of them may be exhausted).
func nextBreak(x, y []float64, i, j int) float64 {
	switch {
	case j >= len(y):
		return x[i]
	case i >= len(x):
		return y[j]
	}
	return math.Min(x[i], y[j])
}

// CircularWasserstein1 is the 1-Wasserstein distance between the empirical
// distributions of a and b on the circle of circumference 1 (hues: 0.95 and
// 0.05 are 0.1 apart, not 0.9). Values are wrapped into [0, 1). On the circle
// the cut point of the CDFs is free, which adds a constant α to their
// difference D = F_a − F_b, and the distance is min_α ∫₀¹ |D(t) − α| dt,
// reached at the median of D over t (Rabin, Delon and Gousseau 2011,
// "Transportation distances on the circle"). D is a step function, so the
// integral and its median are exact over the merged sorted values.
func CircularWasserstein1(a, b []float64) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	wrap := func(v []float64) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = x - math.Floor(x)
		}
		slices.Sort(out)
		return out
	}
	x, y := wrap(a), wrap(b)
	na, nb := float64(len(x)), float64(len(y))
	type step struct{ d, length float64 }
	var steps []step
	i, j := 0, 0
	prev := 0.0
	for {
		// Values at prev belong to F(prev): F is right-continuous.
		for i < len(x) && x[i] <= prev {
			i++
		}
		for j < len(y) && y[j] <= prev {
			j++
		}
		t := 1.0
		if i < len(x) || j < len(y) {
			t = nextBreak(x, y, i, j)
		}
		steps = append(steps, step{float64(i)/na - float64(j)/nb, t - prev})
		if t == 1 {
			break
		}
		prev = t
	}
	sort.Slice(steps, func(p, q int) bool { return steps[p].d < steps[q].d })
	alpha, acc := steps[len(steps)-1].d, 0.0
	for _, s := range steps {
		if acc += s.length; acc >= 0.5 {
			alpha = s.d
			break
		}
	}
	w := 0.0
	for _, s := range steps {
		w += s.length * math.Abs(s.d-alpha)
	}
	return w
}
