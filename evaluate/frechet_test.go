package evaluate

import (
	"math"
	"math/rand/v2"
	"testing"
)

func gaussian(r *rand.Rand, n, d int, shift, scale float64) [][]float64 {
	x := make([][]float64, n)
	for i := range x {
		x[i] = make([]float64, d)
		for j := range x[i] {
			x[i][j] = shift + scale*r.NormFloat64()
		}
	}
	return x
}

func TestFrechet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	a := gaussian(r, 2000, 4, 0, 1)
	self, err := Frechet(a, a)
	if err != nil || self > 1e-9 {
		t.Fatalf("distance of a set with itself: %g %v", self, err)
	}
	// N(0, I) vs N(1, 4I) in 4-D: 4·1² + 4·(1 + 4 − 2·2) = 8.
	b := gaussian(r, 20000, 4, 1, 2)
	c := gaussian(r, 20000, 4, 0, 1)
	got, _ := Frechet(c, b)
	if math.Abs(got-8) > 0.3 {
		t.Fatalf("Fréchet distance %g, want ≈ 8", got)
	}
	if _, err := Frechet(a[:1], b); err == nil {
		t.Fatal("one sample accepted")
	}
}
