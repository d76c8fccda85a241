package engine

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// benchConvStep times forward + backward of one convolution on the issue's
// reference batch, x [64, 16, 16, 64] and a k×k kernel to 64 filters.
func benchConvStep(b *testing.B, k int, conv func(x, w *graph.Node) *graph.Node) {
	be := backend(b)
	exec, err := graph.NewExec(be, func(x, w *graph.Node) (*graph.Node, *graph.Node) {
		y := conv(x, w)
		loss := graph.ReduceAllSum(graph.Mul(y, y))
		g := graph.Gradient(loss, x, w)
		return g[0], g[1]
	})
	if err != nil {
		b.Fatal(err)
	}
	x := tensors.FromShape(shapesF32(64, 16, 16, 64))
	w := tensors.FromShape(shapesF32(k, k, 64, 64))
	if _, err := exec.Exec(x, w); err != nil { // compile outside the timer
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := exec.Exec(x, w)
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range out {
			o.FinalizeAll()
		}
	}
}

func BenchmarkConvOwn3x3(b *testing.B) {
	benchConvStep(b, 3, func(x, w *graph.Node) *graph.Node { return Conv2D(x, w, 1, 1) })
}

func BenchmarkConvOwn4x4s2(b *testing.B) {
	benchConvStep(b, 4, func(x, w *graph.Node) *graph.Node { return Conv2D(x, w, 2, 1) })
}
