package edit

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/gomlx/gomlx/backends"
	"gonum.org/v1/gonum/mat"
)

// GANSpace (Härkönen et al. 2020) finds directions by PCA.
//
// NewGANSpace is the latent variant: the top-k principal axes of sampled
// latents. For an isotropic prior this only recovers sampling noise, so it is
// mostly useful for latents that are not isotropic (encoder outputs, a mapped
// space); NewGANSpaceActivations is GANSpace proper: PCA where the generator
// is anisotropic, in its first layer's activations, each axis carried back to
// the latent space by regression.
//
// Params of both: "mode" ("latent" or "activations"), "n_samples",
// "explained_variance_ratio" (variance of each component over the total
// variance of the space the PCA ran in); activations mode also records
// "ridge" and "regression_r2" (how much of each component's coordinate a
// linear function of z explains: near 1 for a near-linear first layer).
// Directions are named "pc 0" … "pc k-1", in decreasing variance, each with
// its sign fixed so that its largest-magnitude component is positive.

// NewGANSpace returns the top-k principal axes of the latents z (n × d,
// n ≥ 2, 1 ≤ k ≤ d) as a "ganspace" editor.
func NewGANSpace(z [][]float32, k int, be backends.Backend) (*Linear, error) {
	const method = "ganspace"
	x, err := cfMatrix(method, "z", z)
	if err != nil {
		return nil, err
	}
	n, d := x.Dims()
	if err := cfCheckK(method, k, d, n, be); err != nil {
		return nil, err
	}
	total := cfCentre(x)
	var cov mat.SymDense
	cov.SymOuterK(1, x.T())
	vals, vecs, err := cfEigTop(method, &cov, k)
	if err != nil {
		return nil, err
	}
	ratio, err := cfRatios(method, vals, total, k)
	if err != nil {
		return nil, err
	}
	dirs := make([][]float32, k)
	for j := range dirs {
		dirs[j] = cfFloat32(cfFixSign(mat.Col(nil, j, vecs)))
	}
	params := Options{"mode": "latent", "n_samples": n, "explained_variance_ratio": ratio}
	return cfLinear(method, dirs, params, cfNames("pc", k), be)
}

// ganspaceExactMax is the largest min(n, F) for which NewGANSpaceActivations
// computes the activation PCA exactly (eigen-decomposition of the n×n Gram or
// F×F covariance matrix); above it a randomized subspace iteration finds the
// top components at a fraction of the cost. A variable for the tests.
var ganspaceExactMax = 1024

// ganspaceRidge is the ridge of the regression z → PCA coordinate, relative
// to the mean eigenvalue of the centred ZᵀZ: enough to keep a rank-deficient
// sample solvable, far too little to bias a well-posed one.
const ganspaceRidge = 1e-3

// NewGANSpaceActivations is GANSpace proper. act (n × F) are the first-layer
// activations of the generator for the latents z (n × d), row for row. The
// top-k principal axes u_j of act are found, and each is carried back to the
// latent space as the least-squares (ridge) regression coefficients of its
// coordinate (act − μ)·u_j on z; the unit coefficient vector is direction j.
// Needs 1 ≤ k ≤ min(d, F). Memory is n·F float64s; time O(n·F·min(n, F))
// while min(n, F) ≤ 1024 (seconds on a CPU at F = 8192), else O(n·F·k)
// per power iteration of a randomized PCA (as GANSpace's fbpca estimator).
func NewGANSpaceActivations(z, act [][]float32, k int, be backends.Backend) (*Linear, error) {
	const method = "ganspace"
	zx, err := cfMatrix(method, "z", z)
	if err != nil {
		return nil, err
	}
	ax, err := cfMatrix(method, "act", act)
	if err != nil {
		return nil, err
	}
	n, d := zx.Dims()
	na, f := ax.Dims()
	if na != n {
		return nil, fmt.Errorf("edit: %s: %d latents but %d activation rows", method, n, na)
	}
	if err := cfCheckK(method, k, d, n, be); err != nil {
		return nil, err
	}
	if k > f {
		return nil, fmt.Errorf("edit: %s: k = %d exceeds the %d activation features", method, k, f)
	}
	total := cfCentre(ax)
	vals, coords, err := topPCACoords(method, ax, k)
	if err != nil {
		return nil, err
	}
	ratio, err := cfRatios(method, vals, total, k)
	if err != nil {
		return nil, err
	}

	// Ridge regression of the coordinates on the centred latents:
	// B = (ZᵀZ + λI)⁻¹ Zᵀ C, one column per component.
	ztrace := cfCentre(zx)
	var gram mat.SymDense
	gram.SymOuterK(1, zx.T())
	lambda := ganspaceRidge * ztrace / float64(d)
	if lambda == 0 {
		return nil, fmt.Errorf("edit: %s: the latents z are all equal", method)
	}
	for i := 0; i < d; i++ {
		gram.SetSym(i, i, gram.At(i, i)+lambda)
	}
	var ch mat.Cholesky
	if !ch.Factorize(&gram) {
		return nil, fmt.Errorf("edit: %s: the latent regression is singular", method)
	}
	var rhs, beta mat.Dense
	rhs.Mul(zx.T(), coords)
	if err := ch.SolveTo(&beta, &rhs); err != nil {
		return nil, fmt.Errorf("edit: %s: latent regression: %w", method, err)
	}
	var fit mat.Dense
	fit.Mul(zx, &beta)
	r2 := make([]float64, k)
	dirs := make([][]float32, k)
	for j := 0; j < k; j++ {
		var res, tot float64
		for i := 0; i < n; i++ {
			c := coords.At(i, j)
			e := c - fit.At(i, j)
			res += e * e
			tot += c * c
		}
		r2[j] = 1 - res/tot
		b := mat.Col(nil, j, &beta)
		if cfNorm(b) == 0 || math.IsNaN(cfNorm(b)) {
			return nil, fmt.Errorf("edit: %s: component %d does not depend linearly on z", method, j)
		}
		dirs[j] = cfFloat32(cfFixSign(b))
	}
	params := Options{"mode": "activations", "n_samples": n, "explained_variance_ratio": ratio,
		"ridge": ganspaceRidge, "regression_r2": r2}
	return cfLinear(method, dirs, params, cfNames("pc", k), be)
}

// topPCACoords returns the top-k eigenvalues of XᵀX for the centred x (n × F),
// in decreasing order, and the coordinates X·u_j of the samples on the
// corresponding unit eigenvectors (n × k). The sign of each column is
// arbitrary.
func topPCACoords(method string, x *mat.Dense, k int) ([]float64, *mat.Dense, error) {
	n, f := x.Dims()
	switch {
	case min(n, f) > ganspaceExactMax:
		return randomizedPCACoords(method, x, k)
	case n <= f:
		// XXᵀ = V Λ Vᵀ: X u_j = √λ_j v_j.
		var g mat.SymDense
		g.SymOuterK(1, x)
		vals, vecs, err := cfEigTop(method, &g, k)
		if err != nil {
			return nil, nil, err
		}
		coords := mat.NewDense(n, k, nil)
		for j := 0; j < k; j++ {
			s := math.Sqrt(max(vals[j], 0))
			for i := 0; i < n; i++ {
				coords.Set(i, j, s*vecs.At(i, j))
			}
		}
		return vals, coords, nil
	default:
		var c mat.SymDense
		c.SymOuterK(1, x.T())
		vals, vecs, err := cfEigTop(method, &c, k)
		if err != nil {
			return nil, nil, err
		}
		var coords mat.Dense
		coords.Mul(x, vecs)
		return vals, &coords, nil
	}
}

// randomizedPCACoords is topPCACoords by randomized subspace iteration
// (Halko, Martinsson & Tropp 2011) with a fixed seed: the range of X is
// sketched with l = 2k+20 Gaussian probes, refined by power iterations, and
// the top components are read off the small projected problem.
func randomizedPCACoords(method string, x *mat.Dense, k int) ([]float64, *mat.Dense, error) {
	const powerIters = 8
	n, f := x.Dims()
	l := min(2*k+20, n, f)
	rng := rand.New(rand.NewPCG(1, 2))
	omega := mat.NewDense(f, l, nil)
	for i := 0; i < f; i++ {
		for j := 0; j < l; j++ {
			omega.Set(i, j, rng.NormFloat64())
		}
	}
	q := mat.NewDense(n, l, nil)
	q.Mul(x, omega)
	cfOrthonormalise(q)
	var t mat.Dense
	for it := 0; it < powerIters; it++ {
		t.Reset()
		t.Mul(x.T(), q) // F × l
		q.Mul(x, &t)
		cfOrthonormalise(q)
	}
	// B = QᵀX (l × F); BBᵀ = W Λ Wᵀ; X u_j ≈ Q B Bᵀ w_j / s_j = s_j Q w_j.
	var b mat.Dense
	b.Mul(q.T(), x)
	var bb mat.SymDense
	bb.SymOuterK(1, &b)
	vals, w, err := cfEigTop(method, &bb, k)
	if err != nil {
		return nil, nil, err
	}
	coords := mat.NewDense(n, k, nil)
	coords.Mul(q, w)
	for j := 0; j < k; j++ {
		s := math.Sqrt(max(vals[j], 0))
		for i := 0; i < n; i++ {
			coords.Set(i, j, s*coords.At(i, j))
		}
	}
	return vals, coords, nil
}

// cfOrthonormalise replaces the columns of q by an orthonormal basis of their
// span (modified Gram-Schmidt, twice for accuracy). A column that collapses
// is left zero.
func cfOrthonormalise(q *mat.Dense) {
	n, l := q.Dims()
	col := make([][]float64, l)
	for j := range col {
		col[j] = mat.Col(nil, j, q)
	}
	for pass := 0; pass < 2; pass++ {
		for j := 0; j < l; j++ {
			for i := 0; i < j; i++ {
				cfAxpy(-cfDot(col[i], col[j]), col[i], col[j])
			}
			nrm := cfNorm(col[j])
			if nrm < 1e-300 {
				clear(col[j])
				continue
			}
			for i := range col[j] {
				col[j][i] /= nrm
			}
		}
	}
	for j := range col {
		for i := 0; i < n; i++ {
			q.Set(i, j, col[j][i])
		}
	}
}

// ---- helpers shared by the closed-form constructors (GANSpace, SeFa,
// InterFaceGAN); "cf" keeps them apart from the rest of the package.

// cfMatrix checks rows (non-empty, rectangular, finite) and copies them.
func cfMatrix(method, what string, rows [][]float32) (*mat.Dense, error) {
	if len(rows) == 0 || len(rows[0]) == 0 {
		return nil, fmt.Errorf("edit: %s: %s is empty", method, what)
	}
	c := len(rows[0])
	m := mat.NewDense(len(rows), c, nil)
	for i, r := range rows {
		if len(r) != c {
			return nil, fmt.Errorf("edit: %s: %s row %d has %d values, row 0 has %d", method, what, i, len(r), c)
		}
		for j, v := range r {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("edit: %s: %s[%d][%d] is %v", method, what, i, j, v)
			}
			m.Set(i, j, float64(v))
		}
	}
	return m, nil
}

func cfCheckK(method string, k, d, n int, be backends.Backend) error {
	switch {
	case be == nil:
		return fmt.Errorf("edit: %s: no backend", method)
	case k < 1 || k > d:
		return fmt.Errorf("edit: %s: k = %d must be in [1, %d] (the latent dimension)", method, k, d)
	case n < 2:
		return fmt.Errorf("edit: %s: %d samples; need at least 2", method, n)
	}
	return nil
}

// cfCentre subtracts the column means of x in place and returns the total
// sum of squares left (the trace of XᵀX).
func cfCentre(x *mat.Dense) float64 {
	n, c := x.Dims()
	raw := x.RawMatrix()
	mean := make([]float64, c)
	for i := 0; i < n; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+c]
		for j, v := range row {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	total := 0.0
	for i := 0; i < n; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+c]
		for j := range row {
			row[j] -= mean[j]
			total += row[j] * row[j]
		}
	}
	return total
}

// cfEigTop returns the k largest eigenvalues of s, decreasing, and their unit
// eigenvectors as the columns of a (dim × k) matrix.
func cfEigTop(method string, s mat.Symmetric, k int) ([]float64, *mat.Dense, error) {
	var eig mat.EigenSym
	if !eig.Factorize(s, true) {
		return nil, nil, errors.New("edit: " + method + ": eigen-decomposition did not converge")
	}
	vals := eig.Values(nil) // ascending
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	dim := len(vals)
	order := make([]int, dim)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return vals[order[a]] > vals[order[b]] })
	top := make([]float64, k)
	out := mat.NewDense(dim, k, nil)
	for j := 0; j < k; j++ {
		top[j] = vals[order[j]]
		for i := 0; i < dim; i++ {
			out.Set(i, j, vecs.At(i, order[j]))
		}
	}
	return top, out, nil
}

// cfRatios is vals / total, refusing components without variance.
func cfRatios(method string, vals []float64, total float64, k int) ([]float64, error) {
	if !(total > 0) {
		return nil, fmt.Errorf("edit: %s: the data have no variance", method)
	}
	r := make([]float64, k)
	for j := range r {
		r[j] = vals[j] / total
		if r[j] < 1e-10 {
			return nil, fmt.Errorf("edit: %s: the data span only %d dimensions, fewer than k = %d", method, j, k)
		}
	}
	return r, nil
}

// cfFixSign flips v in place so that its largest-magnitude component (the
// first of equals) is positive, and returns it.
func cfFixSign(v []float64) []float64 {
	best := 0
	for i, x := range v {
		if math.Abs(x) > math.Abs(v[best]) {
			best = i
		}
	}
	if v[best] < 0 {
		for i := range v {
			v[i] = -v[i]
		}
	}
	return v
}

func cfFloat32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func cfDot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func cfNorm(a []float64) float64 { return math.Sqrt(cfDot(a, a)) }

// cfAxpy is y += a·x.
func cfAxpy(a float64, x, y []float64) {
	for i := range x {
		y[i] += a * x[i]
	}
}

func cfNames(prefix string, k int) []string {
	n := make([]string, k)
	for i := range n {
		n[i] = fmt.Sprintf("%s %d", prefix, i)
	}
	return n
}

// cfLinear builds the fixed editor and names its directions.
func cfLinear(method string, dirs [][]float32, params Options, names []string, be backends.Backend) (*Linear, error) {
	l, err := NewFixed(method, dirs, params, be)
	if err != nil {
		return nil, err
	}
	if err := l.SetNames(names); err != nil {
		return nil, fmt.Errorf("edit: %s: %w", method, err)
	}
	return l, nil
}
