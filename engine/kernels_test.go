//go:build cgo && !noblas

package engine

import (
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"latentedit/engine/internal/kernels"
)

// The kernels seen through the graphs engine builds: its convolution with
// its own gradient, its matmul with its own gradient, its im2col. The
// kernels' own tests (engine/internal/kernels) drive them node by node.

// requireConv fails the test where oneDNN's convolutions are missing,
// unless EnvKernels=stock asked for that.
func requireConv(t *testing.T) {
	t.Helper()
	if kernels.StockOnly() {
		t.Skipf("%s=stock: oneDNN convolutions not installed on purpose", EnvKernels)
	}
	if !kernels.ConvInstalled() {
		t.Fatalf("oneDNN ConvGeneral not installed: %s", kernels.ConvReason())
	}
}

// TestDNNLRefusalFallsBack: a geometry oneDNN refuses runs through
// simplego's own convolution, value and gradients, instead of failing the
// graph.
func TestDNNLRefusalFallsBack(t *testing.T) {
	requireConv(t)
	const n, h, c, f = 3, 11, 5, 7 // a geometry no other test uses, so no plan is cached
	defer kernels.RefuseConvs(func(kind, cc, ff int) bool { return kind != 0 && cc == c && ff == f })()
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
	calls, falls := kernels.ConvCounts()
	for i, o := range exec.MustExec(x, w) {
		if d := tensors.ToScalar[float32](o); !(d < 2e-5) {
			t.Errorf("%s differs from im2col by %g (relative)", []string{"value", "dx", "dkernel"}[i], d)
		}
	}
	calls2, falls2 := kernels.ConvCounts()
	if calls2-calls != 1 {
		t.Errorf("%d convolutions ran through oneDNN, want 1 (the forward)", calls2-calls)
	}
	if falls2-falls != 2 {
		t.Errorf("%d convolutions fell back to simplego, want 2 (both gradients)", falls2-falls)
	}
}

// TestNodePlansFollowGraphs: the per-node plans of the native executors go
// when their graphs are dropped; keyed by node they kept every graph alive.
func TestNodePlansFollowGraphs(t *testing.T) {
	requireConv(t)
	be := backend(t)
	runtime.GC() // earlier tests' graphs go first, so that base holds still
	time.Sleep(50 * time.Millisecond)
	base := kernels.NodePlans()
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
	grown := kernels.NodePlans() - base
	if grown < graphs {
		t.Fatalf("%d node plans after %d graphs: the test does not exercise the cache", grown, graphs)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		left := kernels.NodePlans() - base
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

// TestMatMulRunsThroughSgemm: MatMul and its own gradient are three
// DotGenerals of three layouts, all taken by the native sgemm, with the
// stock executor's values.
func TestMatMulRunsThroughSgemm(t *testing.T) {
	if kernels.StockOnly() {
		t.Skipf("%s=stock", EnvKernels)
	}
	if !kernels.DotInstalled() {
		t.Fatalf("native DotGeneral not installed: %s", kernels.DotReason())
	}
	exec := graph.MustNewExec(backend(t), func(a, b *graph.Node) []*graph.Node {
		y := MatMul(a, b)
		w := graph.Sin(graph.IotaFull(y.Graph(), y.Shape()))
		grads := graph.Gradient(graph.ReduceAllSum(graph.Mul(y, w)), a, b)
		return []*graph.Node{y, grads[0], grads[1]}
	})
	a := tensors.FromFlatDataAndDimensions(randVec32(130*70), 130, 70)
	b := tensors.FromFlatDataAndDimensions(randVec32(70*90 + 1)[1:], 70, 90)
	run := func(native bool) [][]float32 {
		kernels.SetDotNative(native)
		defer kernels.SetDotNative(true)
		var out [][]float32
		for _, o := range exec.MustExec(a, b) {
			out = append(out, tensors.MustCopyFlatData[float32](o))
		}
		return out
	}
	stock := run(false)
	before := kernels.DotCalls()
	fast := run(true)
	if got := kernels.DotCalls() - before; got != 3 {
		t.Errorf("%d DotGenerals ran through sgemm, want 3", got)
	}
	for i := range stock {
		if d := maxAbsRel(fast[i], stock[i]); !(d < 1e-5) {
			t.Errorf("output %d differs from the stock DotGeneral by %g (relative)", i, d)
		}
	}
}

// TestConvUsesGatherIm2col: on this backend, with the fast Gather, the
// im2col convolution builds its matrix with one row Gather.
func TestConvUsesGatherIm2col(t *testing.T) {
	if kernels.StockOnly() {
		t.Skipf("%s=stock", EnvKernels)
	}
	if g := graph.NewGraph(backend(t), "conv"); !gatherIm2col(g) {
		t.Errorf("Conv2D does not use the Gather im2col on %s", backend(t).Name())
	}
}

// maxAbsRel is max |a-b| / max |b|.
func maxAbsRel(a, b []float32) float64 {
	var d, m float64
	for i := range b {
		d = max(d, math.Abs(float64(a[i]-b[i])))
		m = max(m, math.Abs(float64(b[i])))
	}
	return d / max(m, 1e-30)
}
