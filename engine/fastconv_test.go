//go:build cgo && !noblas

package engine

import (
	"fmt"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"latentedit/engine/internal/kernels"
)

// TestFastConvInstalled fails where oneDNN's convolutions cannot be used
// (scripts/test.sh installs libdnnl2) or simplego's internals moved.
func TestFastConvInstalled(t *testing.T) {
	requireConv(t)
}

// TestFastConvMatchesIm2col checks nativeConv2D — value and both gradients —
// against the im2col convolution (whose gradients TestConvGradient checks
// against finite differences), for every kernel, stride and padding our
// models use and a few they do not: once through oneDNN, and once through
// simplego's own ConvGeneral executor, which checks the three nodes' layouts
// independently of oneDNN.
func TestFastConvMatchesIm2col(t *testing.T) {
	requireConv(t)
	defer kernels.SetConvNative(true)
	for _, tc := range []struct{ n, h, c, f, k, s, p int }{
		{2, 8, 3, 5, 3, 1, 1},    // stem: 3×3 same
		{2, 8, 6, 4, 4, 2, 1},    // down: 4×4 stride 2
		{3, 16, 16, 32, 4, 2, 1}, // wider
		{2, 7, 9, 16, 3, 1, 1},   // odd side
		{2, 5, 4, 3, 1, 1, 0},    // 1×1
		{2, 9, 4, 6, 3, 2, 1},    // 3×3 stride 2
		{2, 6, 4, 6, 3, 1, 0},    // valid
		{4, 32, 64, 3, 3, 1, 1},  // to RGB
	} {
		for _, native := range []bool{true, false} {
			name := fmt.Sprintf("%+v/oneDNN=%v", tc, native)
			kernels.SetConvNative(native)
			exec := graph.MustNewExec(backend(t), func(x, w *graph.Node) []*graph.Node {
				d := x.Shape().Dimensions
				ho := (d[1]+2*tc.p-tc.k)/tc.s + 1
				ours := nativeConv2D(x, w, tc.s, tc.p)
				if ours == nil {
					panic("nativeConv2D declined")
				}
				ref := im2colConv2D(x, w, tc.s, tc.p, ho, ho)
				proj := func(y *graph.Node) *graph.Node {
					return graph.ReduceAllSum(graph.Mul(y, graph.Cos(graph.IotaFull(y.Graph(), y.Shape()))))
				}
				rel := func(a, b *graph.Node) *graph.Node { // max |a-b| / max |b|
					return graph.Div(graph.ReduceAllMax(graph.Abs(graph.Sub(a, b))), graph.ReduceAllMax(graph.Abs(b)))
				}
				go_, gr := graph.Gradient(proj(ours), x, w), graph.Gradient(proj(ref), x, w)
				return []*graph.Node{rel(ours, ref), rel(go_[0], gr[0]), rel(go_[1], gr[1])}
			})
			x := tensors.FromFlatDataAndDimensions(randVec32(tc.n*tc.h*tc.h*tc.c), tc.n, tc.h, tc.h, tc.c)
			w := tensors.FromFlatDataAndDimensions(randVec32(tc.k*tc.k*tc.c*tc.f + 1)[1:], tc.k, tc.k, tc.c, tc.f)
			calls, _ := kernels.ConvCounts()
			for i, o := range exec.MustExec(x, w) {
				if d := tensors.ToScalar[float32](o); !(d < 2e-5) {
					t.Errorf("%s: %s differs from im2col by %g (relative)", name, []string{"value", "dx", "dkernel"}[i], d)
				}
			}
			if now, _ := kernels.ConvCounts(); native && now-calls != 3 {
				t.Errorf("%s: %d convolutions ran through oneDNN, want 3", name, now-calls)
			}
		}
	}
}

func BenchmarkConvNative3x3(b *testing.B) {
	benchConvStep(b, 3, func(x, w *graph.Node) *graph.Node { return nativeConv2D(x, w, 1, 1) })
}

func BenchmarkConvNative4x4s2(b *testing.B) {
	benchConvStep(b, 4, func(x, w *graph.Node) *graph.Node { return nativeConv2D(x, w, 2, 1) })
}

func BenchmarkConvIm2col3x3(b *testing.B) {
	benchConvStep(b, 3, func(x, w *graph.Node) *graph.Node { return im2colConv2D(x, w, 1, 1, 16, 16) })
}

func BenchmarkConvIm2col4x4s2(b *testing.B) {
	benchConvStep(b, 4, func(x, w *graph.Node) *graph.Node { return im2colConv2D(x, w, 2, 1, 8, 8) })
}
