package engine

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// testBackend is shared by the package's tests: creating a backend is cheap,
// but one per test clutters the output of -v.
var testBackend backends.Backend

func backend(t testing.TB) backends.Backend {
	t.Helper()
	if testBackend == nil {
		b, err := NewBackend("")
		if err != nil {
			t.Fatal(err)
		}
		testBackend = b
	}
	return testBackend
}

func randVec(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64()
	}
	return v
}

func prod(d []int) int {
	n := 1
	for _, x := range d {
		n *= x
	}
	return n
}

// checkGrad runs GradCheck on f with random inputs of the given shapes and
// fails if any relative error exceeds tol. A fixed, non-trivial projection of
// the output makes the scalar depend on every output element differently.
func checkGrad(t *testing.T, f func(xs []*graph.Node) *graph.Node, tol float64, dims ...[]int) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	inputs := make([][]float64, len(dims))
	for i, d := range dims {
		inputs[i] = randVec(r, prod(d))
	}
	proj := func(xs []*graph.Node) *graph.Node {
		y := f(xs)
		w := graph.Sin(graph.MulScalar(graph.Iota(y.Graph(), y.Shape(), -1), 0.7))
		w = graph.Add(w, graph.MulScalar(graph.Cos(graph.IotaFull(y.Graph(), y.Shape())), 0.3))
		return graph.ReduceAllSum(graph.Mul(y, w))
	}
	errs, err := GradCheck(backend(t), proj, inputs, dims, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if !(e <= tol) {
			t.Errorf("input %d %v: relative gradient error %.3g > %.1g", i, dims[i], e, tol)
		}
	}
}

func TestMatMulGradient(t *testing.T) {
	checkGrad(t, func(xs []*graph.Node) *graph.Node { return MatMul(xs[0], xs[1]) }, 1e-6, []int{5, 7}, []int{7, 3})
}

func TestMatMulGradientSharedInput(t *testing.T) {
	// a used twice (a·b and a·aᵀ·… via another MatMul): accumulation must be right.
	checkGrad(t, func(xs []*graph.Node) *graph.Node {
		ab := MatMul(xs[0], xs[1])                   // [4,3]
		return MatMul(ab, graph.Transpose(ab, 0, 1)) // [4,4]
	}, 1e-6, []int{4, 6}, []int{6, 3})
}

// TestMatMulOwnsGradient checks that MatMul's gradient is set on its
// DotGeneral node (not the copying fallback), and that the fallback's
// gradient is right too.
func TestMatMulOwnsGradient(t *testing.T) {
	g := graph.NewGraph(backend(t), "matmul")
	a := graph.Parameter(g, "a", shapesF32(4, 6))
	b := graph.Parameter(g, "b", shapesF32(6, 3))
	if y := MatMul(a, b); y.Type() != graph.NodeTypeDotGeneral || y.CustomGradient() == nil {
		t.Errorf("MatMul built %s with custom gradient %v; want a DotGeneral carrying its own gradient", y.Type(), y.CustomGradient() != nil)
	}
	checkGrad(t, func(xs []*graph.Node) *graph.Node {
		ab := linkedMatMul(xs[0], xs[1])
		return linkedMatMul(ab, graph.Transpose(ab, 0, 1))
	}, 1e-6, []int{4, 6}, []int{6, 3})
}

func TestConvGradient(t *testing.T) {
	cases := []struct {
		name                string
		h, w, c, k, f, s, p int
	}{
		{"3x3 s1 p1", 6, 6, 3, 3, 2, 1, 1},
		{"4x4 s2 p1", 8, 8, 2, 4, 3, 2, 1},
		{"4x4 s1 p0", 6, 5, 2, 4, 2, 1, 0},
		{"2x2 s2 p0", 6, 6, 2, 2, 3, 2, 0},
		{"1x1 s1 p0", 4, 4, 3, 1, 2, 1, 0},
		{"3x3 s2 p1", 7, 7, 2, 3, 2, 2, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkGrad(t, func(xs []*graph.Node) *graph.Node { return Conv2D(xs[0], xs[1], tc.s, tc.p) }, 1e-6,
				[]int{2, tc.h, tc.w, tc.c}, []int{tc.k, tc.k, tc.c, tc.f})
		})
	}
}

func shapesF32(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }

func randVec32(n int) []float32 {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func TestInScope(t *testing.T) {
	for _, tc := range []struct {
		scope, prefix string
		want          bool
	}{
		{"/generator", "/generator", true},
		{"/generator/up0", "/generator", true},
		{"/generator_ema/up0", "/generator", false},
		{"/anything", "", true},
		{"/generator/up0", "/generator/", true},
	} {
		if got := InScope(tc.scope, tc.prefix); got != tc.want {
			t.Errorf("InScope(%q, %q) = %v", tc.scope, tc.prefix, got)
		}
	}
}
