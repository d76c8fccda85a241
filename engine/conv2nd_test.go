package engine

import (
	"latentedit/engine/internal/kernels"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// familyConv is the convolution family of nativeConv2D without its
// backend and dtype gate, so that it runs in float64 on the pure-Go
// backend's own ConvGeneral: finite differences need float64.
func familyConv(t *testing.T, x, k *graph.Node, stride, pad int) *graph.Node {
	f, ok := newConvFamily(x, k, stride, pad)
	if !ok {
		t.Fatalf("geometry %s ⊛ %s s%d p%d not expressible", x.Shape(), k.Shape(), stride, pad)
	}
	return f.forward(x, k)
}

// TestConvFamilyGradient: the first-order gradient of the family, in x and
// k, against finite differences, for odd and even kernels and strides 1, 2.
func TestConvFamilyGradient(t *testing.T) {
	for _, tc := range []struct {
		name                string
		h, w, c, k, f, s, p int
	}{
		{"3x3 s1 p1", 6, 6, 3, 3, 2, 1, 1},
		{"4x4 s2 p1", 8, 8, 2, 4, 3, 2, 1},
		{"1x1 s1 p0", 4, 4, 3, 1, 2, 1, 0},
		{"3x3 s2 p1", 7, 7, 2, 3, 2, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGrad(t, func(xs []*graph.Node) *graph.Node {
				return graph.Tanh(familyConv(t, xs[0], xs[1], tc.s, tc.p))
			}, 1e-6, []int{2, tc.h, tc.w, tc.c}, []int{tc.k, tc.k, tc.c, tc.f})
		})
	}
}

// TestConvSecondOrderGradient is the R1 penalty's case: the gradient, in
// the weights of a two-layer convolutional D and in x, of ‖∂ΣD(x)/∂x‖²,
// against finite differences of that penalty. Tanh keeps the function
// smooth so central differences are exact to O(ε²).
func TestConvSecondOrderGradient(t *testing.T) {
	for _, tc := range []struct {
		name       string
		k1, s1, p1 int
		k2, s2, p2 int
	}{
		{"3x3 then 4x4 s2", 3, 1, 1, 4, 2, 1},
		{"4x4 s2 then 3x3", 4, 2, 1, 3, 1, 1},
		{"1x1 then 4x4 s2", 1, 1, 0, 4, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			dims := [][]int{{2, 8, 8, 2}, {tc.k1, tc.k1, 2, 3}, {tc.k2, tc.k2, 3, 2}}
			var inputs [][]float64
			for _, d := range dims {
				inputs = append(inputs, randVec(r, prod(d)))
			}
			r1 := func(xs []*graph.Node) *graph.Node {
				x := xs[0]
				h := graph.Tanh(familyConv(t, x, xs[1], tc.s1, tc.p1))
				d := graph.ReduceAllSum(graph.Tanh(familyConv(t, h, xs[2], tc.s2, tc.p2)))
				gx := graph.Gradient(d, x)[0]
				return graph.ReduceAllSum(graph.Square(gx))
			}
			rel, err := GradCheck(backend(t), r1, inputs, dims, 1e-5)
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range rel {
				if e > 1e-6 {
					t.Errorf("input %d: relative error %.3g of the second-order gradient", i, e)
				}
			}
			t.Logf("relative errors (x, k1, k2): %.2g", rel)
		})
	}
}

// r1Penalty is ‖∂ΣD(x)/∂x‖² for a two-layer D of Conv2D (whichever path
// the backend and dtype select: im2col in float64, oneDNN's in float32
// when installed), with leaky ReLU, upsampling and pixel norm between.
func r1Penalty(xs []*graph.Node) *graph.Node {
	x := xs[0]
	h := graph.Tanh(Conv2D(x, xs[1], 1, 1))
	h = PixelNorm(Upsample2x(LeakyReLU(h, 0.2)), 1e-8) // every layer of ours the style GAN's D and G use
	d := graph.ReduceAllSum(graph.Tanh(Conv2D(h, xs[2], 2, 1)))
	return graph.ReduceAllSum(graph.Square(graph.Gradient(d, x)[0]))
}

var r1Dims = [][]int{{2, 4, 4, 2}, {3, 3, 2, 3}, {4, 4, 3, 2}}

// TestConv2DSecondOrderGradient: the same check through Conv2D itself.
func TestConv2DSecondOrderGradient(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var inputs [][]float64
	for _, d := range r1Dims {
		inputs = append(inputs, randVec(r, prod(d)))
	}
	rel, err := GradCheck(backend(t), r1Penalty, inputs, r1Dims, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range rel {
		if e > 1e-6 {
			t.Errorf("input %d: relative error %.3g", i, e)
		}
	}
}

// TestConv2DSecondOrderFloat32: in float32 (oneDNN's convolutions where
// installed) the R1 gradient matches the float64 one to float32 precision.
func TestConv2DSecondOrderFloat32(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var in64 []any
	var in32 []any
	for _, d := range r1Dims {
		v := randVec(r, prod(d))
		v32 := make([]float32, len(v))
		for i := range v {
			v32[i] = float32(v[i])
		}
		in64 = append(in64, tensors.FromFlatDataAndDimensions(v, d...))
		in32 = append(in32, tensors.FromFlatDataAndDimensions(v32, d...))
	}
	grads := func(xs []*graph.Node) []*graph.Node { return graph.Gradient(r1Penalty(xs), xs[1], xs[2]) }
	e := graph.MustNewExec(backend(t), grads)
	want := e.MustExec(in64...)
	got := e.MustExec(in32...)
	for i := range want {
		w, g := tensors.MustCopyFlatData[float64](want[i]), tensors.MustCopyFlatData[float32](got[i])
		var d2, n2 float64
		for j := range w {
			d2 += (w[j] - float64(g[j])) * (w[j] - float64(g[j]))
			n2 += w[j] * w[j]
		}
		if rel := math.Sqrt(d2 / n2); rel > 1e-4 {
			t.Errorf("kernel %d: float32 R1 gradient differs from float64 by %.2g (relative)", i+1, rel)
		}
	}
	t.Logf("native conv installed: %v", kernels.ConvInstalled())
}
