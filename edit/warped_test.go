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

func newTestWarped(t *testing.T, k, d int, opt Options, seed int64) *Warped {
	t.Helper()
	ctx := context.New()
	if err := ctx.SetRNGStateFromSeed(seed); err != nil {
		t.Fatal(err)
	}
	e, err := New("warped", k, d, opt, ctx, edTestBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	return e.(*Warped)
}

// TestWarpedShiftGradient checks the training step's gradient with respect to
// z, the support vectors, log γ and ε, in float64.
func TestWarpedShiftGradient(t *testing.T) {
	const b, k, m, d = 3, 2, 4, 5
	randn := randnFunc(rand.New(rand.NewPCG(1, 2)))
	onehot := []float64{0, 1, 1, 0, 0, 1}
	inputs := [][]float64{randn(b*d, 0, 1), randn(k*m*d, 0, 1), randn(k*m, math.Log(0.2), 0.3), randn(b, 0, 1)}
	dims := [][]int{{b, d}, {k, m, d}, {k, m}, {b}}
	gradCheck(t, "warped step (z, support, log γ, ε)", func(xs []*graph.Node) *graph.Node {
		oh := graph.Const(xs[0].Graph(), [][]float64{onehot[0:2], onehot[2:4], onehot[4:6]})
		return projection(warpedShift(xs[0], oh, xs[1], xs[2], xs[3]))
	}, inputs, dims)
}

// randnFunc draws n values ~ N(mean, std²) from r.
func randnFunc(r *rand.Rand) func(n int, mean, std float64) []float64 {
	return func(n int, mean, std float64) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = mean + std*r.NormFloat64()
		}
		return x
	}
}

// gradCheck requires f's gradient in every input to match central
// differences (step 1e-5, float64) within 1e-6 relative error.
func gradCheck(t *testing.T, what string, f func(xs []*graph.Node) *graph.Node, inputs [][]float64, dims [][]int) {
	t.Helper()
	errs, err := engine.GradCheck(edTestBackend(t), f, inputs, dims, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if !(e <= 1e-6) {
			t.Errorf("%s: input %d %v: relative gradient error %.3g > 1e-6", what, i, dims[i], e)
		}
	}
	t.Logf("%s: relative gradient errors %.2g", what, errs)
}

// shiftRows runs w.Shift on rows of z with directions dirs and amounts eps.
func shiftRows(t *testing.T, w *Warped, zs []float32, dirs []int, eps []float32) []float32 {
	t.Helper()
	b, k, d := len(dirs), w.K(), w.LatentDim()
	onehot := make([]float32, b*k)
	for i, j := range dirs {
		onehot[i*k+j] = 1
	}
	exec, err := context.NewExec(edTestBackend(t), w.Context(), func(ctx *context.Context, z, oh, e *graph.Node) *graph.Node {
		s, _ := w.Shift(ctx, z, oh, e)
		return s
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec(tensors.FromFlatDataAndDimensions(zs, b, d), tensors.FromFlatDataAndDimensions(onehot, b, k), tensors.FromFlatDataAndDimensions(eps, b))
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float32](out[0])
}

// TestWarpedEditMatchesShift: for |t| ≤ step the host edit is the paper's
// training step (one unit-gradient step of length |t|); by default training
// walks Edit's path, sub-step for sub-step.
func TestWarpedEditMatchesShift(t *testing.T) {
	const b, k, d = 4, 6, 64
	r := rand.New(rand.NewPCG(3, 4))
	zs := make([]float32, 0, b*d)
	for range b {
		zs = append(zs, randLatent(r, d)...)
	}
	dirs := []int{0, 3, 5, 3}
	single := newTestWarped(t, k, d, Options{"train_substeps": 1}, 1)
	eps := []float32{0.5, -0.3, 0.1, -0.5}
	shifted := shiftRows(t, single, zs, dirs, eps)
	for i := range b {
		z := zs[i*d : (i+1)*d]
		e, err := One(single, z, dirs[i], eps[i])
		if err != nil {
			t.Fatal(err)
		}
		if diff := dist32(e, shifted[i*d:(i+1)*d]); !(diff <= 1e-5*norm32(z)) {
			t.Errorf("row %d: Edit and the single-step Shift differ by %.3g", i, diff)
		}
		if moved := dist32(e, z); math.Abs(moved-math.Abs(float64(eps[i]))) > 1e-5 {
			t.Errorf("row %d: a step of %v moved z by %v", i, eps[i], moved)
		}
	}

	w := newTestWarped(t, k, d, nil, 1)
	if w.trainSteps != 12 {
		t.Fatalf("default train_substeps %d, want ⌈6/0.5⌉ = 12", w.trainSteps)
	}
	eps = []float32{6, -6, 2.2, -0.7}
	shifted = shiftRows(t, w, zs, dirs, eps)
	for i := range b {
		z := zs[i*d : (i+1)*d]
		e, err := One(w, z, dirs[i], eps[i])
		if err != nil {
			t.Fatal(err)
		}
		if diff := dist32(e, shifted[i*d:(i+1)*d]); !(diff <= 1e-5*norm32(z)) {
			t.Errorf("row %d (ε = %v): Edit and Shift differ by %.3g", i, eps[i], diff)
		}
	}
	// A long edit is a path of length |t|: it ends no further than |t| away,
	// and nearer when the path bends.
	z := zs[:d]
	long, err := One(w, z, 1, 6)
	if err != nil {
		t.Fatal(err)
	}
	if moved := dist32(long, z); moved > 6+1e-4 || moved < 1 {
		t.Errorf("an edit of 6 moved z by %v", moved)
	}
}

// TestWarpedNonCommutative: warped edits along different directions do not
// commute (the point of a warping).
func TestWarpedNonCommutative(t *testing.T) {
	const k, d, trials = 8, 64, 16
	w := newTestWarped(t, k, d, nil, 2)
	r := rand.New(rand.NewPCG(5, 6))
	mean := 0.0
	for range trials {
		z := randLatent(r, d)
		kk := r.IntN(k)
		l := (kk + 1 + r.IntN(k-1)) % k
		sign := func() float32 {
			if r.IntN(2) == 0 {
				return -1
			}
			return 1
		}
		tt := sign() * float32(0.5+2.5*r.Float64())
		ss := sign() * float32(0.5+2.5*r.Float64())
		a, err := One(w, z, l, ss)
		if err != nil {
			t.Fatal(err)
		}
		ab, err := One(w, a, kk, tt)
		if err != nil {
			t.Fatal(err)
		}
		b, err := One(w, z, kk, tt)
		if err != nil {
			t.Fatal(err)
		}
		ba, err := One(w, b, l, ss)
		if err != nil {
			t.Fatal(err)
		}
		mean += dist32(ab, ba) / norm32(z) / trials
	}
	t.Logf("warped: mean ‖φ_k^t∘φ_l^s(z) − φ_l^s∘φ_k^t(z)‖/‖z‖ = %.3g (|t|, |s| in [0.5, 3], K=%d, d=%d)", mean, k, d)
	if !(mean > 1e-3) {
		t.Errorf("warped edits commute: mean non-commutativity %.3g ≤ 1e-3", mean)
	}
}

// TestWarpedInit: the support vectors start as dipoles ±s, γ as 1/d (or the
// "gamma" option).
func TestWarpedInit(t *testing.T) {
	const k, n, d = 3, 4, 6
	w := newTestWarped(t, k, d, Options{"dipoles": n, "gamma": 0.25}, 3)
	sv, gamma, err := fieldValues(t, w)
	if err != nil {
		t.Fatal(err)
	}
	if len(sv) != k || len(sv[0]) != 2*n*d || len(gamma[0]) != 2*n {
		t.Fatalf("field shapes: %d × %d support values, %d γ; want %d × %d, %d", len(sv), len(sv[0]), len(gamma[0]), k, 2*n*d, 2*n)
	}
	for j := range k {
		for i := range n * d {
			if sv[j][i] != -sv[j][n*d+i] {
				t.Fatalf("direction %d: support value %d is %v, its dipole partner %v", j, i, sv[j][i], sv[j][n*d+i])
			}
		}
		for _, g := range gamma[j] {
			if math.Abs(g-0.25) > 1e-6 {
				t.Fatalf("γ = %v, want 0.25", g)
			}
		}
	}
	w2 := newTestWarped(t, 1, 64, nil, 3)
	_, gamma, err = fieldValues(t, w2)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(gamma[0][0]-1.0/64) > 1e-6 || len(gamma[0]) != 32 {
		t.Errorf("default γ %v (%d support vectors), want 1/64 and 32", gamma[0][0], len(gamma[0]))
	}
	z := randLatent(rand.New(rand.NewPCG(1, 1)), 64)
	if out, err := One(w2, z, 0, 0); err != nil || dist32(out, z) != 0 {
		t.Errorf("Edit with t = 0 moved z (%v)", err)
	}
}

func TestWarpedOptions(t *testing.T) {
	for _, opt := range []Options{
		{"dipoles": 0}, {"gamma": -1.0}, {"gamma": math.Inf(1)}, {"step": 0}, {"step": 1e-3}, {"init_scale": math.NaN()},
		{"train_substeps": -1}, {"train_substeps": 5000},
	} {
		if _, err := New("warped", 2, 4, opt, nil, edTestBackend(t)); err == nil {
			t.Errorf("%v: accepted", opt)
		}
	}
	// 0 is the documented "automatic" value of gamma (1/d) and
	// train_substeps (⌈largest ε / step⌉).
	e, err := New("warped", 2, 4, Options{"gamma": 0, "train_substeps": 0, "step": 0.25}, nil, edTestBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	if w := e.(*Warped); w.trainSteps != int(math.Ceil(warpedEpsMax/0.25)) {
		t.Errorf("train_substeps 0 gave %d sub-steps", w.trainSteps)
	}
}

// fieldValues reads a warped editor's support vectors [K][2N·d] and γ
// [K][2N] in float64.
func fieldValues(t *testing.T, w *Warped) (sv, gamma [][]float64, err error) {
	t.Helper()
	if err := w.Context().InitializeVariables(edTestBackend(t), nil); err != nil {
		return nil, nil, err
	}
	read := func(name string, per int, f func(float64) float64) [][]float64 {
		flat := tensors.MustCopyFlatData[float32](w.Context().GetVariableByScopeAndName(warpedScope, name).MustValue())
		out := make([][]float64, w.K())
		for j := range out {
			out[j] = make([]float64, per)
			for i := range out[j] {
				out[j][i] = f(float64(flat[j*per+i]))
			}
		}
		return out
	}
	m := 2 * w.Dipoles()
	return read("support", m*w.LatentDim(), func(x float64) float64 { return x }), read("log_gamma", m, math.Exp), nil
}
