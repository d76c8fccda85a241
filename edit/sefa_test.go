package edit

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestSeFaRecoversSingularDirections(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	const d, f, k = 12, 30, 4
	sigma := []float64{9, 7, 5, 4, 3, 2.5, 2, 1.5, 1, 0.5, 0.3, 0.1}
	v := cfOrthonormalCols(r, d, d)
	u := cfOrthonormalCols(r, f, d)
	w := make([][]float32, d) // W = V diag(σ) Uᵀ
	for i := range w {
		w[i] = make([]float32, f)
		for c := range w[i] {
			s := 0.0
			for j := 0; j < d; j++ {
				s += v[j][i] * sigma[j] * u[j][c]
			}
			w[i][c] = float32(s)
		}
	}
	l, err := NewSeFa(w, k, cfBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	dirs := cfDirections(t, l)
	eig := l.Params()["eigenvalues"].([]float64)
	for j := 0; j < k; j++ {
		c := cfCos(dirs[j], v[j])
		t.Logf("sefa %d: |cos| with singular direction %d = %.8f, eigenvalue %.4f (σ² = %.4f)", j, j, math.Abs(c), eig[j], sigma[j]*sigma[j])
		if math.Abs(c) < 0.999 {
			t.Fatalf("direction %d |cos| = %v", j, c)
		}
		if math.Abs(eig[j]-sigma[j]*sigma[j]) > 1e-3*sigma[j]*sigma[j] {
			t.Fatalf("eigenvalue %d = %v, want %v", j, eig[j], sigma[j]*sigma[j])
		}
	}
	if l.Method() != "sefa" || l.Names()[0] != "sefa 0" {
		t.Fatalf("method %s names %v", l.Method(), l.Names())
	}
	cfRoundTrip(t, l)
}

func TestSeFaErrors(t *testing.T) {
	be := cfBackend(t)
	r := rand.New(rand.NewPCG(6, 6))
	w := cfGauss(r, 6, 10)
	_, err := NewSeFa(nil, 1, be)
	cfWantErr(t, err, "w is empty")
	_, err = NewSeFa(w, 7, be)
	cfWantErr(t, err, "k = 7 must be in [1, 6]")
	_, err = NewSeFa(w, 1, nil)
	cfWantErr(t, err, "no backend")
	w[2][3] = float32(math.NaN())
	_, err = NewSeFa(w, 1, be)
	cfWantErr(t, err, "w[2][3] is NaN")
	_, err = NewSeFa([][]float32{{1, 2}, {1, 2, 3}}, 1, be)
	cfWantErr(t, err, "row 1 has 3 values")
	rank1 := [][]float32{{1, 2, 3}, {2, 4, 6}, {-1, -2, -3}}
	_, err = NewSeFa(rank1, 2, be)
	cfWantErr(t, err, "span only 1 dimensions")
}
