package evaluate

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Frechet is the Fréchet distance between Gaussians fitted to two feature
// sets (rows are samples): ‖μa−μb‖² + Tr(Σa + Σb − 2(Σa^½ Σb Σa^½)^½).
// With oracle features it measures how far generated images are from real
// ones in the factors the oracle reads (FID with a domain oracle for Inception).
func Frechet(a, b [][]float64) (float64, error) {
	if len(a) < 2 || len(b) < 2 || len(a[0]) == 0 || len(a[0]) != len(b[0]) {
		return 0, fmt.Errorf("frechet: need ≥2 samples of equal, non-zero dimension in each set")
	}
	return FrechetMoments(Moments(a), Moments(b))
}

// Gaussian is the mean and covariance of a feature set: what a Fréchet
// distance needs of it, small enough to keep in a summary when the samples
// are not kept.
type Gaussian struct {
	Mean []float64   `json:"mean"`
	Cov  [][]float64 `json:"cov"`
}

// Moments fits the Gaussian of x (rows are samples, at least two).
func Moments(x [][]float64) Gaussian {
	mu, c := meanCov(x)
	g := Gaussian{Mean: mu, Cov: make([][]float64, len(mu))}
	for i := range g.Cov {
		g.Cov[i] = make([]float64, len(mu))
		for j := range g.Cov[i] {
			g.Cov[i][j] = c.At(i, j)
		}
	}
	return g
}

// FrechetMoments is Frechet between two fitted Gaussians.
func FrechetMoments(a, b Gaussian) (float64, error) {
	d := len(a.Mean)
	if d == 0 || len(b.Mean) != d || len(a.Cov) != d || len(b.Cov) != d {
		return 0, fmt.Errorf("frechet: Gaussians of dimension %d and %d", d, len(b.Mean))
	}
	sym := func(c [][]float64) *mat.SymDense {
		s := mat.NewSymDense(d, nil)
		for i := 0; i < d; i++ {
			for j := i; j < d; j++ {
				s.SetSym(i, j, c[i][j])
			}
		}
		return s
	}
	ca, cb := sym(a.Cov), sym(b.Cov)
	dist := 0.0
	for i := range a.Mean {
		dist += (a.Mean[i] - b.Mean[i]) * (a.Mean[i] - b.Mean[i])
	}
	sa, err := sqrtPSD(ca)
	if err != nil {
		return 0, err
	}
	var m mat.Dense
	m.Mul(sa, cb)
	m.Mul(&m, sa)
	sm := mat.NewSymDense(d, nil)
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			sm.SetSym(i, j, (m.At(i, j)+m.At(j, i))/2)
		}
	}
	cross, err := sqrtPSD(sm)
	if err != nil {
		return 0, err
	}
	for i := 0; i < d; i++ {
		dist += ca.At(i, i) + cb.At(i, i) - 2*cross.At(i, i)
	}
	return math.Max(dist, 0), nil
}

func meanCov(x [][]float64) ([]float64, *mat.SymDense) {
	n, d := len(x), len(x[0])
	mu := make([]float64, d)
	for _, r := range x {
		for j, v := range r {
			mu[j] += v / float64(n)
		}
	}
	c := mat.NewSymDense(d, nil)
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			s := 0.0
			for _, r := range x {
				s += (r[i] - mu[i]) * (r[j] - mu[j])
			}
			c.SetSym(i, j, s/float64(n-1))
		}
	}
	return mu, c
}

// sqrtPSD is the symmetric square root of a positive semi-definite matrix;
// tiny negative eigenvalues from rounding are clipped to 0.
func sqrtPSD(s *mat.SymDense) (*mat.Dense, error) {
	var eig mat.EigenSym
	if !eig.Factorize(s, true) {
		return nil, fmt.Errorf("frechet: eigendecomposition failed")
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	d := len(vals)
	diag := mat.NewDense(d, d, nil)
	for i, v := range vals {
		diag.Set(i, i, math.Sqrt(math.Max(v, 0)))
	}
	var out mat.Dense
	out.Mul(&vecs, diag)
	out.Mul(&out, vecs.T())
	return &out, nil
}
