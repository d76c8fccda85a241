package edit

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"gonum.org/v1/gonum/mat"
)

// InterFaceGANOptions tune NewInterFaceGAN. The zero value is the default.
type InterFaceGANOptions struct {
	// Solver fits each boundary: "logistic" (default; L2-regularised
	// logistic regression by Newton's method with a backtracking line
	// search) or "svm" (linear SVM: hinge loss + L2 by full-batch Pegasos
	// subgradient descent, keeping the iterate of lowest objective).
	Solver string
	// L2 is the weight λ of (λ/2)‖w‖² added to the mean loss; 0 means 1e-3.
	L2 float64
	// Iters bounds the solver: Newton iterations (0 means 100; it usually
	// stops in under 20) or subgradient steps (0 means 2000).
	Iters int
	// Ratio is the fraction of samples taken from each end of a continuous
	// factor: the top Ratio are the positive class, the bottom Ratio the
	// negative one, the middle is left out. 0 means 0.3; at most 0.5.
	Ratio float64
	// Condition asks for conditional directions: {"smile": {"pitch"}} adds a
	// direction "smile|pitch", the smile normal projected onto the orthogonal
	// complement of the pitch normal (of the span of several conditions,
	// then named "smile|pitch,yaw"), renormalised: moving along it leaves
	// the pitch boundary's score unchanged.
	Condition map[string][]string
}

// NewInterFaceGAN fits one linear boundary per labelled factor (Shen et al.
// 2020). z is n × d; labels is n × m, column j the factor factorNames[j].
// A factor whose labels are all 0 or 1 is binary and used as it is; any
// other factor is continuous (an attribute score) and its top and bottom
// opt.Ratio of samples become the positive and negative classes. The
// direction of a factor is the unit normal of its boundary, oriented towards
// the positive (high) class.
//
// The editor's directions are the m factors in order, named by factorNames,
// followed by the conditional directions of opt.Condition, sorted by primary
// factor, named "primary|cond1,cond2" with the conditions in the order given.
// Factor names must be unique, non-empty and free of '|'.
//
// Params: "solver", "l2", "ratio", "factors" (the names), "kind"
// (factor → "binary" or "continuous"), "n_labelled" (factor → samples the
// boundary was fitted on), "accuracy" (factor → fraction of those samples
// the boundary classifies right), and "condition" when there is one.
func NewInterFaceGAN(z [][]float32, labels [][]float32, factorNames []string, opt InterFaceGANOptions, be backends.Backend) (*Linear, error) {
	const method = "interfacegan"
	if be == nil {
		return nil, fmt.Errorf("edit: %s: no backend", method)
	}
	if opt.Solver == "" {
		opt.Solver = "logistic"
	}
	if opt.Solver != "logistic" && opt.Solver != "svm" {
		return nil, fmt.Errorf("edit: %s: unknown solver %q (logistic or svm)", method, opt.Solver)
	}
	if opt.L2 == 0 {
		opt.L2 = 1e-3
	}
	if !(opt.L2 > 0) || math.IsInf(opt.L2, 0) {
		return nil, fmt.Errorf("edit: %s: L2 %v must be positive", method, opt.L2)
	}
	if opt.Iters == 0 {
		opt.Iters = 100
		if opt.Solver == "svm" {
			opt.Iters = 2000
		}
	}
	if opt.Iters < 1 {
		return nil, fmt.Errorf("edit: %s: Iters %d must be positive", method, opt.Iters)
	}
	if opt.Ratio == 0 {
		opt.Ratio = 0.3
	}
	if !(opt.Ratio > 0 && opt.Ratio <= 0.5) {
		return nil, fmt.Errorf("edit: %s: Ratio %v must be in (0, 0.5]", method, opt.Ratio)
	}

	x, err := cfMatrix(method, "z", z)
	if err != nil {
		return nil, err
	}
	lab, err := cfMatrix(method, "labels", labels)
	if err != nil {
		return nil, err
	}
	n, d := x.Dims()
	nl, m := lab.Dims()
	if nl != n {
		return nil, fmt.Errorf("edit: %s: %d latents but %d label rows", method, n, nl)
	}
	if len(factorNames) != m {
		return nil, fmt.Errorf("edit: %s: %d factor names for %d label columns", method, len(factorNames), m)
	}
	index := map[string]int{}
	for j, name := range factorNames {
		if name == "" || strings.Contains(name, "|") {
			return nil, fmt.Errorf("edit: %s: factor name %q must be non-empty and free of '|'", method, name)
		}
		if _, dup := index[name]; dup {
			return nil, fmt.Errorf("edit: %s: factor name %q appears twice", method, name)
		}
		index[name] = j
	}

	// Conditions are checked before any fitting.
	primaries := make([]string, 0, len(opt.Condition))
	for p, conds := range opt.Condition {
		if _, ok := index[p]; !ok {
			return nil, fmt.Errorf("edit: %s: condition on unknown factor %q (factors: %v)", method, p, factorNames)
		}
		if len(conds) == 0 {
			return nil, fmt.Errorf("edit: %s: condition for %q names no factor", method, p)
		}
		seen := map[string]bool{}
		for _, c := range conds {
			switch _, ok := index[c]; {
			case !ok:
				return nil, fmt.Errorf("edit: %s: %q conditioned on unknown factor %q (factors: %v)", method, p, c, factorNames)
			case c == p:
				return nil, fmt.Errorf("edit: %s: %q conditioned on itself", method, p)
			case seen[c]:
				return nil, fmt.Errorf("edit: %s: %q conditioned on %q twice", method, p, c)
			}
			seen[c] = true
		}
		primaries = append(primaries, p)
	}
	sort.Strings(primaries)
	if m+len(primaries) > d {
		return nil, fmt.Errorf("edit: %s: %d directions (%d factors, %d conditional) exceed the latent dimension %d", method, m+len(primaries), m, len(primaries), d)
	}

	cfCentre(x) // the bias absorbs the mean
	normals := make([][]float64, m)
	kind := map[string]any{}
	nLab := map[string]any{}
	acc := map[string]any{}
	for j, name := range factorNames {
		rows, y, k, err := ifgClasses(lab, j, opt.Ratio)
		if err != nil {
			return nil, fmt.Errorf("edit: %s: factor %q: %w", method, name, err)
		}
		xs := mat.NewDense(len(rows), d, nil)
		for i, r := range rows {
			xs.SetRow(i, x.RawRowView(r))
		}
		var w []float64
		var b float64
		if opt.Solver == "logistic" {
			w, b, err = fitLogistic(xs, y, opt.L2, opt.Iters)
		} else {
			w, b = fitSVM(xs, y, opt.L2, opt.Iters)
		}
		if err != nil {
			return nil, fmt.Errorf("edit: %s: factor %q: %w", method, name, err)
		}
		nrm := cfNorm(w)
		if !(nrm > 1e-12) || math.IsInf(nrm, 0) {
			return nil, fmt.Errorf("edit: %s: factor %q: the boundary has no usable normal (norm %v): do the labels depend on z?", method, name, nrm)
		}
		right := 0
		for i := range rows {
			if (cfDot(w, xs.RawRowView(i))+b > 0) == (y[i] > 0) {
				right++
			}
		}
		for i := range w {
			w[i] /= nrm
		}
		normals[j] = w
		kind[name], nLab[name], acc[name] = k, len(rows), float64(right)/float64(len(rows))
	}

	dirs := make([][]float32, 0, m+len(primaries))
	names := append([]string(nil), factorNames...)
	for _, v := range normals {
		dirs = append(dirs, cfFloat32(v))
	}
	cond := map[string]any{}
	for _, p := range primaries {
		conds := opt.Condition[p]
		basis := make([][]float64, 0, len(conds))
		for _, c := range conds {
			basis = append(basis, append([]float64(nil), normals[index[c]]...))
		}
		basis = ifgOrthonormal(basis)
		v := append([]float64(nil), normals[index[p]]...)
		for pass := 0; pass < 2; pass++ {
			for _, q := range basis {
				cfAxpy(-cfDot(q, v), q, v)
			}
		}
		nrm := cfNorm(v)
		if nrm < 1e-6 {
			return nil, fmt.Errorf("edit: %s: %q lies in the span of %v: nothing is left after conditioning", method, p, conds)
		}
		for i := range v {
			v[i] /= nrm
		}
		dirs = append(dirs, cfFloat32(v))
		names = append(names, p+"|"+strings.Join(conds, ","))
		cond[p] = append([]string(nil), conds...)
	}

	params := Options{"solver": opt.Solver, "l2": opt.L2, "ratio": opt.Ratio,
		"factors": append([]string(nil), factorNames...), "kind": kind, "n_labelled": nLab, "accuracy": acc}
	if len(cond) > 0 {
		params["condition"] = cond
	}
	return cfLinear(method, dirs, params, names, be)
}

// ifgClasses returns the samples used for factor column j, their classes
// (+1 positive, −1 negative) and the factor's kind.
func ifgClasses(lab *mat.Dense, j int, ratio float64) (rows []int, y []float64, kind string, err error) {
	n, _ := lab.Dims()
	col := mat.Col(nil, j, lab)
	binary := true
	for _, v := range col {
		if v != 0 && v != 1 {
			binary = false
			break
		}
	}
	if binary {
		pos := 0
		for i, v := range col {
			rows = append(rows, i)
			y = append(y, 2*v-1)
			pos += int(v)
		}
		if pos == 0 || pos == n {
			return nil, nil, "", fmt.Errorf("binary labels are all %v", col[0])
		}
		return rows, y, "binary", nil
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return col[order[a]] < col[order[b]] })
	k := int(ratio * float64(n))
	if k < 1 {
		return nil, nil, "", fmt.Errorf("%d samples: a ratio of %v leaves no sample in a class", n, ratio)
	}
	if col[order[n-k]] <= col[order[k-1]] {
		return nil, nil, "", fmt.Errorf("the top and bottom %v of the values overlap (value %v): the factor barely varies", ratio, col[order[k-1]])
	}
	for _, i := range order[:k] {
		rows = append(rows, i)
		y = append(y, -1)
	}
	for _, i := range order[n-k:] {
		rows = append(rows, i)
		y = append(y, 1)
	}
	return rows, y, "continuous", nil
}

// fitLogistic minimises mean log(1 + exp(−y(w·x + b))) + (λ/2)‖w‖² by
// Newton's method with a backtracking line search; y is ±1.
func fitLogistic(x *mat.Dense, y []float64, lambda float64, iters int) ([]float64, float64, error) {
	n, d := x.Dims()
	theta := make([]float64, d+1) // w, then b
	margins := func(th []float64) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = cfDot(th[:d], x.RawRowView(i)) + th[d]
		}
		return s
	}
	objective := func(th []float64, s []float64) float64 {
		l := 0.0
		for i, v := range s {
			l += cfSoftplus(-y[i] * v)
		}
		return l/float64(n) + lambda/2*cfDot(th[:d], th[:d])
	}
	xt := mat.NewDense(n, d+1, nil) // rows √(p(1−p))·[x, 1]
	var h mat.SymDense
	var ch mat.Cholesky
	grad := mat.NewVecDense(d+1, nil)
	var step mat.VecDense
	s := margins(theta)
	j := objective(theta, s)
	for it := 0; it < iters; it++ {
		g := make([]float64, d+1)
		for i := 0; i < n; i++ {
			p := cfSigmoid(y[i] * s[i])
			// d/ds of cfSoftplus(−y s) is −y σ(−y s); its second derivative σ(s)(1−σ(s)).
			r := -y[i] * (1 - p) / float64(n)
			row := x.RawRowView(i)
			cfAxpy(r, row, g[:d])
			g[d] += r
			sq := math.Sqrt(p * (1 - p) / float64(n))
			dst := xt.RawRowView(i)
			for c, v := range row {
				dst[c] = sq * v
			}
			dst[d] = sq
		}
		cfAxpy(lambda, theta[:d], g[:d])
		h.Reset()
		h.SymOuterK(1, xt.T())
		for c := 0; c < d; c++ {
			h.SetSym(c, c, h.At(c, c)+lambda)
		}
		h.SetSym(d, d, h.At(d, d)+1e-10)
		if !ch.Factorize(&h) {
			return nil, 0, fmt.Errorf("logistic regression: singular Hessian at iteration %d", it)
		}
		for c, v := range g {
			grad.SetVec(c, v)
		}
		if err := ch.SolveVecTo(&step, grad); err != nil {
			return nil, 0, fmt.Errorf("logistic regression: %w", err)
		}
		dec := mat.Dot(grad, &step) // Newton decrement²
		if !(dec > 1e-14) {
			break
		}
		t := 1.0
		next := make([]float64, d+1)
		improved := false
		for ls := 0; ls < 40; ls++ {
			for c := range next {
				next[c] = theta[c] - t*step.AtVec(c)
			}
			ns := margins(next)
			if nj := objective(next, ns); nj <= j-1e-4*t*dec {
				theta, s, j, improved = next, ns, nj, true
				break
			}
			t /= 2
		}
		if !improved {
			break // at the optimum to float precision
		}
	}
	return theta[:d], theta[d], nil
}

// fitSVM minimises mean max(0, 1 − y(w·x + b)) + (λ/2)(‖w‖² + b²) by
// full-batch Pegasos (Shalev-Shwartz et al. 2007): step 1/(λt), projection
// onto the ball of radius 1/√λ, and the iterate of lowest objective is kept.
// The bias is regularised like w (x is augmented with a constant 1), which
// Pegasos needs; the latents are centred, so the bias it shrinks is small.
func fitSVM(x *mat.Dense, y []float64, lambda float64, iters int) ([]float64, float64) {
	n, d := x.Dims()
	theta := make([]float64, d+1)
	best := append([]float64(nil), theta...)
	bestJ := math.Inf(1)
	g := make([]float64, d+1)
	radius := 1 / math.Sqrt(lambda)
	for t := 1; t <= iters+1; t++ {
		clear(g)
		loss := 0.0
		for i := 0; i < n; i++ {
			row := x.RawRowView(i)
			mg := y[i] * (cfDot(theta[:d], row) + theta[d])
			if mg < 1 {
				loss += 1 - mg
				cfAxpy(-y[i]/float64(n), row, g[:d])
				g[d] -= y[i] / float64(n)
			}
		}
		if j := loss/float64(n) + lambda/2*cfDot(theta, theta); j < bestJ {
			bestJ = j
			copy(best, theta)
		}
		if t > iters {
			break
		}
		eta := 1 / (lambda * float64(t))
		for c := range theta {
			theta[c] -= eta * (g[c] + lambda*theta[c])
		}
		if nrm := cfNorm(theta); nrm > radius {
			for c := range theta {
				theta[c] *= radius / nrm
			}
		}
	}
	return best[:d], best[d]
}

// ifgOrthonormal returns an orthonormal basis of the span of vs (modified
// Gram-Schmidt, twice), dropping vectors already in the span.
func ifgOrthonormal(vs [][]float64) [][]float64 {
	var basis [][]float64
	for _, v := range vs {
		for pass := 0; pass < 2; pass++ {
			for _, q := range basis {
				cfAxpy(-cfDot(q, v), q, v)
			}
		}
		nrm := cfNorm(v)
		if nrm < 1e-9 {
			continue
		}
		for i := range v {
			v[i] /= nrm
		}
		basis = append(basis, v)
	}
	return basis
}

func cfSigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// cfSoftplus is log(1 + eˣ) without overflow.
func cfSoftplus(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}
