package edit

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
)

// newTestCurvilinear makes a curvilinear editor whose weights are random
// (the output layers too), so that f is far from the identity.
func newTestCurvilinear(t testing.TB, k, d int, opt Options, seed uint64, scale float64) *Curvilinear {
	t.Helper()
	ctx := context.New()
	e, err := New("curvilinear", k, d, opt, ctx, edTestBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	c := e.(*Curvilinear)
	r := rand.New(rand.NewPCG(seed, 7))
	for _, v := range c.variables() {
		n := 1
		for _, x := range v.shape {
			n *= x
		}
		vals := make([]float32, n)
		std := scale / math.Sqrt(float64(v.shape[0]))
		if len(v.shape) == 1 {
			std = 0.1 * scale
		}
		for i := range vals {
			vals[i] = float32(std * r.NormFloat64())
		}
		vv := ctx.GetVariableByScopeAndName(v.scope, v.name)
		if err := vv.SetValue(tensors.FromFlatDataAndDimensions(vals, v.shape...)); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// flowWeights are random float64 weights for the flow functions, in the
// order Curvilinear.variables lists them.
func flowWeights(c *Curvilinear, r *rand.Rand, scale float64) ([][]float64, [][]int) {
	var vals [][]float64
	var dims [][]int
	for _, v := range c.variables() {
		n := 1
		for _, x := range v.shape {
			n *= x
		}
		std := scale / math.Sqrt(float64(v.shape[0]))
		if len(v.shape) == 1 {
			std = 0.3 * scale
		}
		x := make([]float64, n)
		for i := range x {
			x[i] = std * r.NormFloat64()
		}
		vals = append(vals, x)
		dims = append(dims, v.shape)
	}
	return vals, dims
}

// shapeOnly is a Curvilinear that only describes a flow (for its variables
// list and forward/inverse); it has no context.
func shapeOnly(flow string, d, hidden, layers, steps int, scaleMax float64) *Curvilinear {
	return &Curvilinear{base: base{d: d, k: 1}, flow: flow, hidden: hidden, layers: layers, odeSteps: steps, scaleMax: scaleMax}
}

// projection reduces outputs to a scalar with fixed, uneven weights.
func projection(ys ...*graph.Node) *graph.Node {
	var sum *graph.Node
	for i, y := range ys {
		w := graph.Sin(graph.AddScalar(graph.MulScalar(graph.IotaFull(y.Graph(), y.Shape()), 0.7), float64(i)))
		p := graph.ReduceAllSum(graph.Mul(y, w))
		if sum == nil {
			sum = p
		} else {
			sum = graph.Add(sum, p)
		}
	}
	return sum
}

func flowGradCheck(t *testing.T, c *Curvilinear) {
	r := rand.New(rand.NewPCG(3, 4))
	ws, dims := flowWeights(c, r, 1)
	x := make([]float64, 2*c.d)
	for i := range x {
		x[i] = r.NormFloat64()
	}
	inputs := append([][]float64{x}, ws...)
	dims = append([][]int{{2, c.d}}, dims...)
	errs, err := engine.GradCheck(edTestBackend(t), func(xs []*graph.Node) *graph.Node {
		y, logdet := c.forward(xs[0], xs[1:])
		return projection(y, logdet)
	}, inputs, dims, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i, e := range errs {
		worst = math.Max(worst, e)
		if !(e <= 1e-6) {
			t.Errorf("%s flow: input %d %v: relative gradient error %.3g > 1e-6", c.flow, i, dims[i], e)
		}
	}
	t.Logf("%s flow forward+logdet: worst relative gradient error %.2g over %d inputs", c.flow, worst, len(errs))
}

func TestCouplingGradient(t *testing.T) {
	flowGradCheck(t, shapeOnly("coupling", 4, 3, 3, 0, 1.5))
}

func TestODEGradient(t *testing.T) {
	flowGradCheck(t, shapeOnly("ode", 3, 4, 0, 2, 0))
}

// TestFlowLogDet compares the flow's log-det with log|det J|, J from central
// finite differences of f, in float64 for d = 4. The coupling log-det is
// exact; the ODE's is RK4's integral of the trace, which matches the RK4 map
// up to the integrator's error.
func TestFlowLogDet(t *testing.T) {
	for _, tc := range []struct {
		c   *Curvilinear
		tol float64
	}{
		{shapeOnly("coupling", 4, 6, 4, 0, 2), 1e-7},
		{shapeOnly("ode", 4, 6, 0, 8, 0), 1e-4},
	} {
		c, d := tc.c, tc.c.d
		r := rand.New(rand.NewPCG(5, 6))
		ws, dims := flowWeights(c, r, 1.2)
		exec, err := graph.NewExec(edTestBackend(t), func(xs []*graph.Node) []*graph.Node {
			y, logdet := c.forward(xs[0], xs[1:])
			return []*graph.Node{y, logdet}
		})
		if err != nil {
			t.Fatal(err)
		}
		run := func(x []float64) ([]float64, float64) {
			args := []any{tensors.FromFlatDataAndDimensions(append([]float64(nil), x...), 1, d)}
			for i, w := range ws {
				args = append(args, tensors.FromFlatDataAndDimensions(w, dims[i]...))
			}
			out := exec.MustExec(args...)
			return tensors.MustCopyFlatData[float64](out[0]), tensors.MustCopyFlatData[float64](out[1])[0]
		}
		x := make([]float64, d)
		for i := range x {
			x[i] = r.NormFloat64()
		}
		y, logdet := run(x)
		jac := make([][]float64, d)
		const h = 1e-5
		for j := 0; j < d; j++ {
			xp, xm := append([]float64(nil), x...), append([]float64(nil), x...)
			xp[j] += h
			xm[j] -= h
			yp, _ := run(xp)
			ym, _ := run(xm)
			for i := 0; i < d; i++ {
				if jac[i] == nil {
					jac[i] = make([]float64, d)
				}
				jac[i][j] = (yp[i] - ym[i]) / (2 * h)
			}
		}
		det := determinant(jac)
		moved := 0.0
		for i := range x {
			moved += (y[i] - x[i]) * (y[i] - x[i])
		}
		diff := math.Abs(logdet - math.Log(math.Abs(det)))
		t.Logf("%s: logdet %.9f, log|det J| by finite differences %.9f, difference %.2g (‖f(x)−x‖ = %.2f)", c.flow, logdet, math.Log(math.Abs(det)), diff, math.Sqrt(moved))
		if math.Abs(logdet) < 0.05 {
			t.Errorf("%s: logdet %g: the test flow is too close to volume-preserving to test anything", c.flow, logdet)
		}
		if !(diff <= tc.tol) {
			t.Errorf("%s: logdet %g but log|det J| = %g (difference %.3g > %g)", c.flow, logdet, math.Log(math.Abs(det)), diff, tc.tol)
		}
	}
}

// determinant by Gaussian elimination with partial pivoting.
func determinant(a [][]float64) float64 {
	n := len(a)
	m := make([][]float64, n)
	for i := range a {
		m[i] = append([]float64(nil), a[i]...)
	}
	det := 1.0
	for c := 0; c < n; c++ {
		p := c
		for i := c + 1; i < n; i++ {
			if math.Abs(m[i][c]) > math.Abs(m[p][c]) {
				p = i
			}
		}
		if m[p][c] == 0 {
			return 0
		}
		if p != c {
			m[p], m[c] = m[c], m[p]
			det = -det
		}
		det *= m[c][c]
		for i := c + 1; i < n; i++ {
			f := m[i][c] / m[c][c]
			for j := c; j < n; j++ {
				m[i][j] -= f * m[c][j]
			}
		}
	}
	return det
}

func norm32(v []float32) float64 {
	s := 0.0
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func dist32(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s)
}

func randLatent(r *rand.Rand, d int) []float32 {
	z := make([]float32, d)
	for i := range z {
		z[i] = float32(r.NormFloat64())
	}
	return z
}

var testFlows = []Options{
	{"flow": "coupling", "hidden": 32},
	{"flow": "ode", "hidden": 32},
}

// TestCurvilinearInverse: f⁻¹(f(z)) = z for non-identity flows.
func TestCurvilinearInverse(t *testing.T) {
	const d, k = 64, 8
	for _, opt := range testFlows {
		c := newTestCurvilinear(t, k, d, opt, 1, 1)
		r := rand.New(rand.NewPCG(2, 3))
		worst, moved := 0.0, 0.0
		for range 8 {
			z := randLatent(r, d)
			v, err := c.ToV(z)
			if err != nil {
				t.Fatal(err)
			}
			back, err := c.FromV(v)
			if err != nil {
				t.Fatal(err)
			}
			worst = math.Max(worst, dist32(back, z)/norm32(z))
			moved += dist32(v, z) / norm32(z) / 8
		}
		t.Logf("%s: max ‖f⁻¹(f(z)) − z‖/‖z‖ = %.2g, mean ‖f(z) − z‖/‖z‖ = %.2f", c.flow, worst, moved)
		if moved < 0.05 {
			t.Errorf("%s: f moves z by only %.3g·‖z‖: the test flow is nearly the identity", c.flow, moved)
		}
		if !(worst <= 1e-4) {
			t.Errorf("%s: ‖f⁻¹(f(z)) − z‖ = %.3g·‖z‖ > 1e-4·‖z‖", c.flow, worst)
		}
	}
}

// TestCurvilinearCommute: φ_k^t∘φ_l^s = φ_l^s∘φ_k^t, each edit a separate Edit
// call, and edits are not translations (the flow is curved).
func TestCurvilinearCommute(t *testing.T) {
	const d, k = 64, 8
	for _, opt := range testFlows {
		c := newTestCurvilinear(t, k, d, opt, 4, 1)
		r := rand.New(rand.NewPCG(5, 6))
		worst, curved := 0.0, 0.0
		const trials = 6
		for range trials {
			z := randLatent(r, d)
			kk := r.IntN(k)
			l := (kk + 1 + r.IntN(k-1)) % k
			tt := float32(6*r.Float64() - 3)
			ss := float32(6*r.Float64() - 3)
			a, err := One(c, z, l, ss)
			if err != nil {
				t.Fatal(err)
			}
			ab, err := One(c, a, kk, tt)
			if err != nil {
				t.Fatal(err)
			}
			b, err := One(c, z, kk, tt)
			if err != nil {
				t.Fatal(err)
			}
			ba, err := One(c, b, l, ss)
			if err != nil {
				t.Fatal(err)
			}
			worst = math.Max(worst, dist32(ab, ba)/norm32(z))
			// A translation would move a by exactly b − z.
			trans := make([]float32, d)
			for i := range trans {
				trans[i] = a[i] + b[i] - z[i]
			}
			curved += dist32(ab, trans) / norm32(z) / trials
		}
		t.Logf("%s: max ‖φ_k^t∘φ_l^s(z) − φ_l^s∘φ_k^t(z)‖/‖z‖ = %.2g; mean distance from the translated edit %.3f·‖z‖", c.flow, worst, curved)
		if curved < 1e-2 {
			t.Errorf("%s: edits are translations up to %.3g·‖z‖: the test flow is not curved", c.flow, curved)
		}
		if !(worst <= 1e-4) {
			t.Errorf("%s: edits do not commute: %.3g·‖z‖ > 1e-4·‖z‖", c.flow, worst)
		}
	}
}

// TestCurvilinearSequence: EditSequences (used by Apply) equals repeated edits.
func TestCurvilinearSequence(t *testing.T) {
	const d, k = 64, 8
	c := newTestCurvilinear(t, k, d, testFlows[0], 7, 1)
	r := rand.New(rand.NewPCG(8, 9))
	z := randLatent(r, d)
	steps := []Step{{1, 2}, {4, -1.5}, {1, -0.5}, {7, 3}, {0, 0}}
	seq, err := ApplyOne(c, z, steps)
	if err != nil {
		t.Fatal(err)
	}
	if len(seq) != len(steps) {
		t.Fatalf("Apply returned %d latents for %d steps", len(seq), len(steps))
	}
	cur := z
	worst := 0.0
	for i, s := range steps {
		cur, err = One(c, cur, s.K, s.T)
		if err != nil {
			t.Fatal(err)
		}
		e := dist32(cur, seq[i]) / norm32(z)
		worst = math.Max(worst, e)
		if !(e <= 1e-4) {
			t.Errorf("step %d: EditSequences and repeated edits differ by %.3g·‖z‖", i, e)
		}
	}
	t.Logf("EditSequences vs repeated edits: max difference %.2g·‖z‖", worst)
	if _, err := c.EditSequences([][]float32{z}, [][]Step{{{k, 1}}}); err == nil {
		t.Error("EditSequences accepted direction K")
	}
}

// TestCurvilinearShift: the training graph moves as Edit does, and its
// penalty is mean (log det)².
func TestCurvilinearShift(t *testing.T) {
	const d, k, b = 64, 8, 3
	for _, opt := range testFlows {
		c := newTestCurvilinear(t, k, d, opt, 10, 1)
		r := rand.New(rand.NewPCG(11, 12))
		zs := make([]float32, 0, b*d)
		onehot := make([]float32, b*k)
		eps := make([]float32, b)
		dirs := []int{2, 5, 7}
		for i := range b {
			zs = append(zs, randLatent(r, d)...)
			onehot[i*k+dirs[i]] = 1
			eps[i] = float32(4*r.Float64() - 2)
		}
		exec, err := context.NewExec(edTestBackend(t), c.Context(), func(ctx *context.Context, z, oh, e *graph.Node) []*graph.Node {
			s, p := c.Shift(ctx, z, oh, e)
			return []*graph.Node{s, p}
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Exec(tensors.FromFlatDataAndDimensions(zs, b, d), tensors.FromFlatDataAndDimensions(onehot, b, k), tensors.FromFlatDataAndDimensions(eps, b))
		if err != nil {
			t.Fatal(err)
		}
		shifted := tensors.MustCopyFlatData[float32](out[0])
		penalty := float64(tensors.ToScalar[float32](out[1]))
		want := 0.0
		for i := range b {
			z := zs[i*d : (i+1)*d]
			e, err := One(c, z, dirs[i], eps[i])
			if err != nil {
				t.Fatal(err)
			}
			if diff := dist32(e, shifted[i*d:(i+1)*d]) / norm32(z); !(diff <= 1e-5) {
				t.Errorf("%s row %d: Shift and Edit differ by %.3g·‖z‖", c.flow, i, diff)
			}
			ld, err := logDet(t, c, z)
			if err != nil {
				t.Fatal(err)
			}
			want += float64(ld) * float64(ld) / b
		}
		if math.Abs(penalty-want) > 1e-4*math.Max(1, want) || want == 0 {
			t.Errorf("%s: penalty %g, want mean logdet² = %g (non-zero)", c.flow, penalty, want)
		}
	}
}

// TestCurvilinearIdentityAtInit: a fresh flow is the identity, so a fresh
// editor moves z by exactly t along axis k.
func TestCurvilinearIdentityAtInit(t *testing.T) {
	for _, opt := range testFlows {
		e, err := New("curvilinear", 3, 16, opt, nil, edTestBackend(t))
		if err != nil {
			t.Fatal(err)
		}
		z := randLatent(rand.New(rand.NewPCG(1, 1)), 16)
		out, err := One(e, z, 2, 1.5)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]float32(nil), z...)
		want[2] += 1.5
		if dd := dist32(out, want); dd > 1e-5 {
			t.Errorf("%v: fresh editor moved z to %.3g from z + 1.5·e_2", opt, dd)
		}
	}
}

func TestCurvilinearOptions(t *testing.T) {
	for _, tc := range []struct {
		k, d int
		opt  Options
	}{
		{5, 4, nil},
		{2, 4, Options{"flow": "spline"}},
		{2, 4, Options{"layers": 0}},
		{2, 4, Options{"hidden": -3}},
		{2, 4, Options{"flow": "ode", "ode_steps": 0}},
		{2, 4, Options{"scale_max": -1.0}},
	} {
		if _, err := New("curvilinear", tc.k, tc.d, tc.opt, nil, edTestBackend(t)); err == nil {
			t.Errorf("k=%d d=%d %v: accepted", tc.k, tc.d, tc.opt)
		}
	}
}

// logDet is log|det ∂f/∂z| at z.
func logDet(t *testing.T, c *Curvilinear, z []float32) (float32, error) {
	t.Helper()
	exec, err := context.NewExec(edTestBackend(t), c.Context(), func(ctx *context.Context, z *graph.Node) *graph.Node {
		_, ld := c.forward(z, c.weights(ctx, z.Graph(), z.DType()))
		return ld
	})
	if err != nil {
		return 0, err
	}
	out, err := exec.Exec(tensors.FromFlatDataAndDimensions(append([]float32(nil), z...), 1, c.d))
	if err != nil {
		return 0, err
	}
	return tensors.MustCopyFlatData[float32](out[0])[0], nil
}
