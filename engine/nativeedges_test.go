//go:build cgo && !noblas && linux

package engine

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// The unsafe edges of the cgo layer, each tried from the outside: operands
// that do not match a plan, a geometry oneDNN refuses, more geometries than
// the plan cache keeps, graphs that are dropped, OpenBLAS's thread count.

// TestDNNLConvRefusesWrongLengths: an operand shorter or longer than the
// geometry says is an error before any pointer reaches oneDNN.
func TestDNNLConvRefusesWrongLengths(t *testing.T) {
	requireFast(t, fastConv.installed, "oneDNN ConvGeneral ("+fastConv.reason+")")
	for _, g := range threadTestGeoms[:5] {
		a, b, n := convOperands(g, 0)
		for i, tc := range []struct{ a, b, out []float32 }{
			{a[:len(a)-1], b, make([]float32, n)},
			{a, b[:len(b)-1], make([]float32, n)},
			{a, b, make([]float32, n-1)},
			{a, b, make([]float32, n+1)},
			{nil, b, make([]float32, n)},
		} {
			err := dnnlConv(g, tc.a, tc.b, tc.out)
			if err == nil || !strings.Contains(err.Error(), "elements, want") {
				t.Errorf("kind %d, case %d: error %v, want one naming the lengths", g.kind, i, err)
			}
		}
		if err := checkConv(g, 0); err != nil { // and the right lengths still work
			t.Error(err)
		}
	}
}

// TestSgemmRefusesShortOperands: every library's sgemm is refused in Go when
// an operand is shorter than its dimensions and leading dimensions reach.
func TestSgemmRefusesShortOperands(t *testing.T) {
	requireFast(t, fastDot.installed, "native DotGeneral ("+fastDot.reason+")")
	const m, n, k = 300, 200, 150 // large enough for OpenBLAS's split path
	for _, lib := range blas.libs {
		for _, trans := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			a, b, c := randVec32(m*k), randVec32(k*n + 1)[1:], make([]float32, m*n)
			for i, tc := range []struct{ a, b, c []float32 }{
				{a[:m*k-1], b, c}, {a, b[:k*n-1], c}, {a, b, c[:m*n-1]},
			} {
				err := lib.block(trans[0], trans[1], m, n, k, tc.a, ld(trans[0], k, m), tc.b, ld(trans[1], n, k), tc.c, n)
				if err == nil || !strings.Contains(err.Error(), "need") {
					t.Errorf("%s trans %v case %d: error %v, want one naming the lengths", lib.name, trans, i, err)
				}
			}
			if err := lib.block(trans[0], trans[1], m, n, k, a, ld(trans[0], k, m), b, ld(trans[1], n, k), c, n); err != nil {
				t.Errorf("%s trans %v: %v", lib.name, trans, err)
			}
		}
	}
	if err := sgemm(false, false, 4, 4, 4, randVec32(16), randVec32(17)[1:], make([]float32, 15)); err == nil {
		t.Error("sgemm with an output of 15 elements for 4×4 succeeded")
	}
	for _, tc := range []struct{ m, n, k, lda, ldb, ldc int }{
		{4, 4, 4, 3, 4, 4}, {4, 4, 4, 4, 3, 4}, {4, 4, 4, 4, 4, 3}, {1 << 31, 1, 1, 1, 1, 1}, {0, 4, 4, 4, 4, 4},
	} {
		if err := checkGemm(false, false, tc.m, tc.n, tc.k, 1<<20, tc.lda, 1<<20, tc.ldb, 1<<20, tc.ldc); err == nil {
			t.Errorf("checkGemm%+v accepted", tc)
		}
	}
}

// ld is the leading dimension of a row-major matrix stored [rows, cols], or
// transposed [cols, rows].
func ld(trans bool, cols, rows int) int {
	if trans {
		return rows
	}
	return cols
}

// TestOpenBLASSingleThreaded: OpenBLAS's pool is single-threaded from the
// moment the library is opened, before any sgemm: split calls from several
// goroutines never meet a multi-threaded pool.
func TestOpenBLASSingleThreaded(t *testing.T) {
	requireFast(t, fastDot.installed, "native DotGeneral ("+fastDot.reason+")")
	found := false
	for _, lib := range blas.libs {
		if lib.dnnl {
			continue
		}
		found = true
		if n := lib.threads(); n != 1 {
			t.Errorf("%s runs %d threads, want 1", lib.name, n)
		}
	}
	if !found {
		t.Fatal("OpenBLAS not opened (scripts/test.sh installs libopenblas0)")
	}
}

// TestDNNLRefusalFallsBack: a geometry oneDNN refuses runs through
// simplego's own convolution, value and gradients, instead of failing the
// graph.
func TestDNNLRefusalFallsBack(t *testing.T) {
	requireFast(t, fastConv.installed, "oneDNN ConvGeneral ("+fastConv.reason+")")
	const n, h, c, f = 3, 11, 5, 7 // a geometry no other test uses, so no plan is cached
	setLocked(func() { dnnlRefuse = func(g dnnlGeom) bool { return g.kind != 0 && g.c == c && g.f == f } })
	defer setLocked(func() { dnnlRefuse = nil })
	exec := graph.MustNewExec(backend(t), func(x, w *graph.Node) []*graph.Node {
		ours, ref := nativeConv2D(x, w, 2, 1), im2colConv2D(x, w, 2, 1, 6, 6)
		proj := func(y *graph.Node) *graph.Node {
			return graph.ReduceAllSum(graph.Mul(y, graph.Cos(graph.IotaFull(y.Graph(), y.Shape()))))
		}
		rel := func(a, b *graph.Node) *graph.Node {
			return graph.Div(graph.ReduceAllMax(graph.Abs(graph.Sub(a, b))), graph.ReduceAllMax(graph.Abs(b)))
		}
		go_, gr := graph.Gradient(proj(ours), x, w), graph.Gradient(proj(ref), x, w)
		return []*graph.Node{rel(ours, ref), rel(go_[0], gr[0]), rel(go_[1], gr[1])}
	})
	x := tensors.FromFlatDataAndDimensions(randVec32(n*h*h*c), n, h, h, c)
	w := tensors.FromFlatDataAndDimensions(randVec32(3*3*c*f + 2)[2:], 3, 3, c, f)
	calls, falls := fastConv.calls.Load(), fastConv.fallbacks.Load()
	for i, o := range exec.MustExec(x, w) {
		if d := tensors.ToScalar[float32](o); !(d < 2e-5) {
			t.Errorf("%s differs from im2col by %g (relative)", []string{"value", "dx", "dkernel"}[i], d)
		}
	}
	if got := fastConv.calls.Load() - calls; got != 1 {
		t.Errorf("%d convolutions ran through oneDNN, want 1 (the forward)", got)
	}
	if got := fastConv.fallbacks.Load() - falls; got != 2 {
		t.Errorf("%d convolutions fell back to simplego, want 2 (both gradients)", got)
	}
	g := convGeom(1, n, h, c, f, 3, 2, 1)
	a, b, m := convOperands(g, 0)
	if err := dnnlConv(g, a, b, make([]float32, m)); !errors.Is(err, errDNNLRefused) {
		t.Errorf("dnnlConv of a refused geometry: %v, want errDNNLRefused", err)
	}
}

// TestDNNLPlanCacheIsBounded: past dnnlPlanCap geometries the least recently
// used plans are destroyed, and a geometry met again gets a new plan that
// computes the same values.
func TestDNNLPlanCacheIsBounded(t *testing.T) {
	requireFast(t, fastConv.installed, "oneDNN ConvGeneral ("+fastConv.reason+")")
	var old int
	setLocked(func() { old, dnnlPlanCap = dnnlPlanCap, 3 })
	defer setLocked(func() { dnnlPlanCap = old })
	for round := 0; round < 2; round++ {
		for i, g := range threadTestGeoms {
			if err := checkConv(g, round); err != nil {
				t.Fatal(err)
			}
			if n := dnnlPlans(); n > 3 {
				t.Fatalf("round %d, geometry %d: %d plans kept, cap 3", round, i, n)
			}
		}
	}
	if dnnlImpl(threadTestGeoms[0]) != "" || dnnlImpl(threadTestGeoms[len(threadTestGeoms)-1]) == "" {
		t.Error("the cache did not keep the most recently used plans only")
	}
}

// TestNodePlansFollowGraphs: the per-node plans of the native executors go
// when their graphs are dropped; keyed by node they kept every graph alive.
func TestNodePlansFollowGraphs(t *testing.T) {
	requireFast(t, fastConv.installed, "oneDNN ConvGeneral ("+fastConv.reason+")")
	be := backend(t)
	runtime.GC() // earlier tests' graphs go first, so that base holds still
	time.Sleep(50 * time.Millisecond)
	base := fastConv.plans.n.Load() + fastDot.plans.n.Load()
	const graphs = 20
	for i := 0; i < graphs; i++ {
		exec := graph.MustNewExec(be, func(x, w *graph.Node) *graph.Node {
			y := graph.Reshape(nativeConv2D(x, w, 1, 1), 2, -1)
			return graph.ReduceAllSum(MatMul(y, graph.Transpose(y, 0, 1)))
		})
		x := tensors.FromFlatDataAndDimensions(randVec32(2*(5+i)*6*2), 2, 5+i, 6, 2)
		w := tensors.FromFlatDataAndDimensions(randVec32(3*3*2*4 + 1)[1:], 3, 3, 2, 4)
		exec.MustExec(x, w)
		exec.Finalize()
	}
	grown := fastConv.plans.n.Load() + fastDot.plans.n.Load() - base
	if grown < graphs {
		t.Fatalf("%d node plans after %d graphs: the test does not exercise the cache", grown, graphs)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		left := fastConv.plans.n.Load() + fastDot.plans.n.Load() - base
		if left <= 2 { // a graph may still be referenced from the stack
			t.Logf("%d node plans made, %d left after the graphs were dropped", grown, left)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d node plans still kept 10 s after their graphs were dropped", left, grown)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// setLocked changes the plan cache's settings between executions.
func setLocked(f func()) {
	dnnl.mu.Lock()
	defer dnnl.mu.Unlock()
	f()
}
