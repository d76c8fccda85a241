// Package mixture fits a Gaussian mixture with full covariances to points by
// expectation–maximisation, and evaluates and samples it. It is the VAE's
// ex-post latent prior (generator.Prior).
//
// Why our own: no kept Go library fits mixtures (gonum has the linear algebra,
// not EM), and the fit is small: k-means++ seeding, Lloyd iterations, then EM
// with a ridge on every covariance, as scikit-learn's GaussianMixture does
// (reg_covar). The density is checked against PyTorch's
// MixtureSameFamily in the tests; the fit against a known mixture.
package mixture

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// Model is a Gaussian mixture in d dimensions.
type Model struct {
	Weights []float64   // K mixture weights, summing to 1
	Means   [][]float64 // K × d
	Chol    [][]float64 // K × d·d: each covariance's lower Cholesky factor L (Σ = L Lᵀ), row-major
}

// Dim is the dimension of the points.
func (m *Model) Dim() int { return len(m.Means[0]) }

// Sample maps a standard-normal ε (length d) and a uniform u in [0, 1) to a
// draw: the component whose cumulative weight first exceeds u, then μ + L ε.
func (m *Model) Sample(eps []float64, u float64, out []float64) {
	c, acc := 0, 0.0
	for ; c < len(m.Weights)-1; c++ {
		if acc += m.Weights[c]; u < acc {
			break
		}
	}
	d, mu, l := len(eps), m.Means[c], m.Chol[c]
	for i := 0; i < d; i++ {
		s := mu[i]
		for j := 0; j <= i; j++ {
			s += l[i*d+j] * eps[j]
		}
		out[i] = s
	}
}

// Validate checks shapes, finiteness, the weights' sum and that every factor
// is lower-triangular with a positive diagonal, naming the first thing wrong.
func (m *Model) Validate(d int) error {
	k := len(m.Weights)
	if k == 0 || len(m.Means) != k || len(m.Chol) != k {
		return fmt.Errorf("mixture: %d weights, %d means, %d covariance factors: want the same non-zero count", k, len(m.Means), len(m.Chol))
	}
	sum := 0.0
	for c := 0; c < k; c++ {
		w := m.Weights[c]
		if !(w >= 0) || math.IsInf(w, 0) {
			return fmt.Errorf("mixture: weight %d is %g", c, w)
		}
		sum += w
		if len(m.Means[c]) != d || len(m.Chol[c]) != d*d {
			return fmt.Errorf("mixture: component %d has a mean of %d and a factor of %d values; the dimension is %d (want %d and %d)", c, len(m.Means[c]), len(m.Chol[c]), d, d, d*d)
		}
		for i, v := range m.Means[c] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("mixture: component %d: mean %d is %g", c, i, v)
			}
		}
		for i, v := range m.Chol[c] {
			r, col := i/d, i%d
			switch {
			case math.IsNaN(v) || math.IsInf(v, 0):
				return fmt.Errorf("mixture: component %d: covariance factor (%d, %d) is %g", c, r, col, v)
			case r == col && !(v > 0):
				return fmt.Errorf("mixture: component %d: covariance factor diagonal %d is %g, want > 0", c, r, v)
			case col > r && v != 0:
				return fmt.Errorf("mixture: component %d: covariance factor (%d, %d) is %g above the diagonal; it must be lower-triangular", c, r, col, v)
			}
		}
	}
	if math.Abs(sum-1) > 1e-4 {
		return fmt.Errorf("mixture: weights sum to %g, want 1", sum)
	}
	return nil
}

// LogDensity returns log p(x) for every row of x (n × d, row-major).
func (m *Model) LogDensity(x []float64, n int) []float64 {
	lp := m.componentLogProbs(x, n)
	out := make([]float64, n)
	for i := range out {
		out[i] = logSumExp(lp[i*len(m.Weights) : (i+1)*len(m.Weights)])
	}
	return out
}

// componentLogProbs returns log w_c + log N(x_i | μ_c, Σ_c) as an n × K
// row-major matrix, one goroutine per component.
func (m *Model) componentLogProbs(x []float64, n int) []float64 {
	k, d := len(m.Weights), m.Dim()
	out := make([]float64, n*k)
	parallel(k, func(c int) {
		y := make([]float64, n*d)
		for i := 0; i < n; i++ {
			for j := 0; j < d; j++ {
				y[i*d+j] = x[i*d+j] - m.Means[c][j]
			}
		}
		// Solve Y Lᵀ = X − μ for Y: ‖y_i‖² is the Mahalanobis distance.
		blas64.Trsm(blas.Right, blas.Trans, 1,
			blas64.Triangular{Uplo: blas.Lower, Diag: blas.NonUnit, N: d, Stride: d, Data: m.Chol[c]},
			blas64.General{Rows: n, Cols: d, Stride: d, Data: y})
		logDet := 0.0
		for j := 0; j < d; j++ {
			logDet += 2 * math.Log(m.Chol[c][j*d+j])
		}
		base := math.Log(m.Weights[c]) - 0.5*(float64(d)*math.Log(2*math.Pi)+logDet)
		for i := 0; i < n; i++ {
			s := 0.0
			for _, v := range y[i*d : (i+1)*d] {
				s += v * v
			}
			out[i*k+c] = base - 0.5*s
		}
	})
	return out
}

// DefaultMaxIter is Fit's bound on EM iterations when Options leave it 0.
const DefaultMaxIter = 200

// Options configure Fit.
type Options struct {
	K        int     // components
	Seed     int64   // k-means++ seeding
	MaxIter  int     // EM iterations at most (default DefaultMaxIter)
	Tol      float64 // stop when the mean log-likelihood gains less (default 1e-4)
	Reg      float64 // ridge added to every covariance's diagonal (default 1e-6, scikit-learn's reg_covar)
	Progress func(iter int, meanLogLik float64)
}

// Fit fits a K-component mixture to the n points x (n × d, row-major). It
// returns the model and the mean log-likelihood after each EM iteration.
func Fit(x []float64, n, d int, o Options) (*Model, []float64, error) {
	if o.MaxIter == 0 {
		o.MaxIter = DefaultMaxIter
	}
	if o.Tol == 0 {
		o.Tol = 1e-4
	}
	if o.Reg == 0 {
		o.Reg = 1e-6
	}
	switch {
	case d < 1 || len(x) != n*d:
		return nil, nil, fmt.Errorf("mixture: %d values for %d points of dimension %d", len(x), n, d)
	case o.K < 1:
		return nil, nil, fmt.Errorf("mixture: %d components, want at least 1", o.K)
	case n < 2*o.K:
		return nil, nil, fmt.Errorf("mixture: %d points for %d components: want at least 2 per component", n, o.K)
	case o.Reg < 0:
		return nil, nil, fmt.Errorf("mixture: ridge %g, want ≥ 0", o.Reg)
	}
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, nil, fmt.Errorf("mixture: point %d, coordinate %d is %g", i/d, i%d, v)
		}
	}
	resp := kmeans(x, n, d, o.K, o.Seed)
	m := &Model{Weights: make([]float64, o.K), Means: make([][]float64, o.K), Chol: make([][]float64, o.K)}
	var curve []float64
	for it := 0; it < o.MaxIter; it++ {
		if err := m.mStep(x, n, d, resp, o.Reg); err != nil {
			return nil, curve, fmt.Errorf("mixture: iteration %d: %w", it, err)
		}
		ll := m.eStep(x, n, resp)
		curve = append(curve, ll)
		if o.Progress != nil {
			o.Progress(it+1, ll)
		}
		if it > 0 && math.Abs(ll-curve[it-1]) < o.Tol {
			break
		}
	}
	return m, curve, nil
}

// eStep replaces resp (n × K) by the posterior responsibilities under m and
// returns the mean log-likelihood.
func (m *Model) eStep(x []float64, n int, resp []float64) float64 {
	k := len(m.Weights)
	lp := m.componentLogProbs(x, n)
	total := 0.0
	for i := 0; i < n; i++ {
		row := lp[i*k : (i+1)*k]
		l := logSumExp(row)
		total += l
		for c, v := range row {
			resp[i*k+c] = math.Exp(v - l)
		}
	}
	return total / float64(n)
}

// errSingular is returned when a covariance is not positive definite even
// with the ridge.
var errSingular = errors.New("a covariance is not positive definite; raise the ridge (Options.Reg)")

// mStep sets weights, means and covariances from the responsibilities.
func (m *Model) mStep(x []float64, n, d int, resp []float64, reg float64) error {
	k := len(m.Weights)
	// A component that lost all its points would divide by zero: a tiny floor
	// keeps it defined (its weight is then ~0 and it stays harmless).
	const floor = 1e-10
	errs := make([]error, k)
	parallel(k, func(c int) {
		nc := floor
		mu := make([]float64, d)
		for i := 0; i < n; i++ {
			r := resp[i*k+c]
			nc += r
			for j := 0; j < d; j++ {
				mu[j] += r * x[i*d+j]
			}
		}
		for j := range mu {
			mu[j] /= nc
		}
		// Σ = Σ_i r_i (x_i − μ)(x_i − μ)ᵀ / N_c + reg·I, as Yᵀ Y with rows √r_i (x_i − μ).
		y := make([]float64, n*d)
		for i := 0; i < n; i++ {
			s := math.Sqrt(resp[i*k+c])
			for j := 0; j < d; j++ {
				y[i*d+j] = s * (x[i*d+j] - mu[j])
			}
		}
		cov := mat.NewSymDense(d, nil)
		cov.SymOuterK(1/nc, mat.NewDense(n, d, y).T())
		for j := 0; j < d; j++ {
			cov.SetSym(j, j, cov.At(j, j)+reg)
		}
		var ch mat.Cholesky
		if !ch.Factorize(cov) {
			errs[c] = fmt.Errorf("component %d (weight %.3g): %w", c, nc/float64(n), errSingular)
			return
		}
		var l mat.TriDense
		ch.LTo(&l)
		flat := make([]float64, d*d)
		for i := 0; i < d; i++ {
			for j := 0; j <= i; j++ {
				flat[i*d+j] = l.At(i, j)
			}
		}
		m.Weights[c], m.Means[c], m.Chol[c] = nc, mu, flat
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	sum := 0.0
	for _, w := range m.Weights {
		sum += w
	}
	for c := range m.Weights {
		m.Weights[c] /= sum
	}
	return nil
}

// kmeans seeds K centres by k-means++ (Arthur & Vassilvitskii 2007), runs
// Lloyd iterations and returns hard responsibilities (n × K) for EM's first
// M-step, as scikit-learn's init_params="kmeans" does.
func kmeans(x []float64, n, d, k int, seed int64) []float64 {
	r := rand.New(rand.NewPCG(uint64(seed), 0x6a3b))
	centres := make([]float64, 0, k*d)
	dist := make([]float64, n)
	sq := func(i int, c []float64) float64 {
		s := 0.0
		for j := 0; j < d; j++ {
			v := x[i*d+j] - c[j]
			s += v * v
		}
		return s
	}
	first := r.IntN(n)
	centres = append(centres, x[first*d:(first+1)*d]...)
	for i := range dist {
		dist[i] = sq(i, centres[:d])
	}
	for len(centres) < k*d {
		total := 0.0
		for _, v := range dist {
			total += v
		}
		u, pick := r.Float64()*total, n-1
		for i, v := range dist {
			if u -= v; u < 0 {
				pick = i
				break
			}
		}
		c := x[pick*d : (pick+1)*d]
		centres = append(centres, c...)
		for i := range dist {
			dist[i] = min(dist[i], sq(i, c))
		}
	}
	assign := make([]int, n)
	for it := 0; it < 20; it++ {
		changed := false
		for i := 0; i < n; i++ {
			best, bd := 0, math.Inf(1)
			for c := 0; c < k; c++ {
				if v := sq(i, centres[c*d:(c+1)*d]); v < bd {
					best, bd = c, v
				}
			}
			if it == 0 || assign[i] != best {
				changed, assign[i] = true, best
			}
		}
		if !changed {
			break
		}
		counts := make([]int, k)
		sums := make([]float64, k*d)
		for i, c := range assign {
			counts[c]++
			for j := 0; j < d; j++ {
				sums[c*d+j] += x[i*d+j]
			}
		}
		for c := 0; c < k; c++ {
			if counts[c] == 0 {
				continue // keep an empty cluster's centre where it was
			}
			for j := 0; j < d; j++ {
				centres[c*d+j] = sums[c*d+j] / float64(counts[c])
			}
		}
	}
	resp := make([]float64, n*k)
	for i, c := range assign {
		resp[i*k+c] = 1
	}
	return resp
}

func logSumExp(v []float64) float64 {
	mx := math.Inf(-1)
	for _, x := range v {
		mx = max(mx, x)
	}
	if math.IsInf(mx, -1) {
		return mx
	}
	s := 0.0
	for _, x := range v {
		s += math.Exp(x - mx)
	}
	return mx + math.Log(s)
}

// parallel runs f(0…k−1) on at most GOMAXPROCS goroutines at a time.
func parallel(k int, f func(c int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for c := 0; c < k; c++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(c)
		}()
	}
	wg.Wait()
}
