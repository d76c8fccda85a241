package engine

import (
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// fillConvDefaults wraps a backend so the stock convolution gradient can run on
// the pure-Go backend at all: that gradient passes empty strides and dilations,
// which simplego reads as 0 (GOMLX-NOTES trap 2). It exists only so the
// benchmark and test below can put the stock conv beside ours; latentedit never
// uses the stock conv.
type fillConvDefaults struct{ backends.Backend }

func (b fillConvDefaults) Builder(name string) backends.Builder {
	return convBuilder{b.Backend.Builder(name)}
}

type convBuilder struct{ backends.Builder }

func (b convBuilder) Main() backends.Function { return convFunction{b.Builder.Main()} }

type convFunction struct{ backends.Function }

func (f convFunction) ConvGeneral(in, k backends.Value, axes backends.ConvolveAxesConfig, strides []int, pads [][2]int,
	inDil, kDil []int, cg, bg int) (backends.Value, error) {
	ones := func(s []int) []int {
		if len(s) > 0 {
			return s
		}
		s = make([]int, len(axes.InputSpatial))
		for i := range s {
			s[i] = 1
		}
		return s
	}
	return f.Function.ConvGeneral(in, k, axes, ones(strides), pads, ones(inDil), ones(kDil), cg, bg)
}

func stockConv(x, w *graph.Node, stride, pad int) *graph.Node {
	return graph.Convolve(x, w).StridePerAxis(stride, stride).PaddingPerDim([][2]int{{pad, pad}, {pad, pad}}).Done()
}

// TestConvMatchesStock checks our forward pass and, for an odd kernel (where
// the stock gradient is right), our gradients against GoMLX's convolution.
func TestConvMatchesStock(t *testing.T) {
	be := fillConvDefaults{backend(t)}
	for _, tc := range []struct{ k, s, p int }{{3, 1, 1}, {3, 2, 1}, {4, 2, 1}} {
		exec := graph.MustNewExec(be, func(x, w *graph.Node) []*graph.Node {
			ours, stock := Conv2D(x, w, tc.s, tc.p), stockConv(x, w, tc.s, tc.p)
			rel := func(a, b *graph.Node) *graph.Node { // max |a-b| / max |b|
				return graph.Div(graph.ReduceAllMax(graph.Abs(graph.Sub(a, b))), graph.ReduceAllMax(graph.Abs(b)))
			}
			out := []*graph.Node{rel(ours, stock)}
			if tc.k%2 == 1 {
				lo := graph.ReduceAllSum(graph.Mul(ours, ours))
				ls := graph.ReduceAllSum(graph.Mul(stock, stock))
				go_, gs := graph.Gradient(lo, x, w), graph.Gradient(ls, x, w)
				for i := range go_ {
					out = append(out, rel(go_[i], gs[i]))
				}
			}
			return out
		})
		x := tensors.FromFlatDataAndDimensions(randVec32(2*9*9*3), 2, 9, 9, 3)
		w := tensors.FromFlatDataAndDimensions(randVec32(tc.k*tc.k*3*4), tc.k, tc.k, 3, 4)
		for i, o := range exec.MustExec(x, w) {
			if d := tensors.ToScalar[float32](o); !(d < 1e-5) {
				t.Errorf("k=%d s=%d: output %d differs from stock by %g (relative)", tc.k, tc.s, i, d)
			}
		}
	}
}

func BenchmarkConvStock3x3(b *testing.B) {
	testBackend = fillConvDefaults{backend(b)}
	defer func() { testBackend = testBackend.(fillConvDefaults).Backend }()
	benchConvStep(b, 3, func(x, w *graph.Node) *graph.Node { return stockConv(x, w, 1, 1) })
}

func BenchmarkConvStock4x4s2(b *testing.B) {
	testBackend = fillConvDefaults{backend(b)}
	defer func() { testBackend = testBackend.(fillConvDefaults).Backend }()
	benchConvStep(b, 4, func(x, w *graph.Node) *graph.Node { return stockConv(x, w, 2, 1) })
}
