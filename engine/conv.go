package engine

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"

	"github.com/gomlx/gomlx/pkg/support/exceptions"
	"latentedit/engine/internal/kernels"
)

// Conv2D is a 2-D convolution of x [B, H, W, C] (channels last) with kernel
// [kh, kw, C, F], stride s and zero padding p on every side. It returns
// [B, Ho, Wo, F] with Ho = (H + 2p - kh)/s + 1.
//
// Why our own: GoMLX v0.27.2's convolution gradient is wrong for even kernel
// sizes on every backend and crashes on the pure-Go backend (GOMLX-NOTES traps
// 1 and 2). On the pure-Go backend with oneDNN installed, float32
// convolutions are one ConvGeneral node with our own gradient, run by oneDNN's
// convolution primitives (nativeConv2D, fastconv.go); TestFastConvMatchesIm2col
// checks them against the im2col form. Elsewhere the convolution is im2col — one strided slice per kernel tap,
// concatenated on channels — followed by MatMul, whose gradient we own. Every
// op involved has a correct gradient (Slice, Concatenate and Reshape stock ones,
// Pad and MatMul our own), which TestConvGradient checks against finite differences for 3×3, 4×4 and
// 1×1 kernels with strides 1 and 2.
func Conv2D(x, kernel *graph.Node, stride, pad int) *graph.Node {
	if x.Rank() != 4 || kernel.Rank() != 4 {
		exceptions.Panicf("engine.Conv2D: want x [B,H,W,C] and kernel [kh,kw,C,F], got %s and %s", x.Shape(), kernel.Shape())
	}
	d := x.Shape().Dimensions
	k := kernel.Shape().Dimensions
	h, w, c := d[1], d[2], d[3]
	kh, kw := k[0], k[1]
	if k[2] != c {
		exceptions.Panicf("engine.Conv2D: kernel has %d input channels, x has %d", k[2], c)
	}
	if stride < 1 || pad < 0 {
		exceptions.Panicf("engine.Conv2D: stride %d and pad %d must be ≥1 and ≥0", stride, pad)
	}
	ho, wo := (h+2*pad-kh)/stride+1, (w+2*pad-kw)/stride+1
	if ho < 1 || wo < 1 {
		exceptions.Panicf("engine.Conv2D: kernel %dx%d does not fit %dx%d with pad %d", kh, kw, h, w, pad)
	}
	if y := nativeConv2D(x, kernel, stride, pad); y != nil {
		return y
	}
	return im2colConv2D(x, kernel, stride, pad, ho, wo)
}

// im2colConv2D is Conv2D as im2col and a matmul, for every backend.
func im2colConv2D(x, kernel *graph.Node, stride, pad, ho, wo int) *graph.Node {
	d := x.Shape().Dimensions
	k := kernel.Shape().Dimensions
	b, c := d[0], d[3]
	kh, kw, f := k[0], k[1], k[3]
	if pad > 0 {
		x = zeroPad(x, pad)
	}
	var cols *graph.Node
	switch {
	case kh == 1 && kw == 1 && stride == 1:
		cols = x
	case gatherIm2col(x.Graph()):
		cols = im2colGather(x, kh, kw, stride, ho, wo)
	default:
		taps := make([]*graph.Node, 0, kh*kw)
		for i := 0; i < kh; i++ {
			for j := 0; j < kw; j++ {
				taps = append(taps, graph.Slice(x,
					graph.AxisRange(),
					graph.AxisRange(i, i+stride*(ho-1)+1).Stride(stride),
					graph.AxisRange(j, j+stride*(wo-1)+1).Stride(stride),
					graph.AxisRange()))
			}
		}
		cols = graph.Concatenate(taps, -1) // [B, Ho, Wo, kh*kw*C], tap-major like the kernel's layout
	}
	y := MatMul(graph.Reshape(cols, b*ho*wo, kh*kw*c), graph.Reshape(kernel, kh*kw*c, f))
	return graph.Reshape(y, b, ho, wo, f)
}

// Conv is a convolution layer with its variables in ctx, built like GoMLX's
// own layers: Conv(ctx, x).Filters(64).Kernel(4).Stride(2).Pad(1).Done().
type ConvBuilder struct {
	ctx                          *context.Context
	x                            *graph.Node
	filters, kernel, stride, pad int
	bias                         bool
}

// Conv starts a convolution layer on x [B, H, W, C].
func Conv(ctx *context.Context, x *graph.Node) *ConvBuilder {
	return &ConvBuilder{ctx: ctx, x: x, kernel: 3, stride: 1, pad: -1, bias: true}
}

// Filters sets the number of output channels (required).
func (c *ConvBuilder) Filters(n int) *ConvBuilder { c.filters = n; return c }

// Kernel sets the (square) kernel size; default 3.
func (c *ConvBuilder) Kernel(k int) *ConvBuilder { c.kernel = k; return c }

// Stride sets the stride; default 1.
func (c *ConvBuilder) Stride(s int) *ConvBuilder { c.stride = s; return c }

// Pad sets the zero padding on every side; default (kernel-1)/2, "same" for odd kernels.
func (c *ConvBuilder) Pad(p int) *ConvBuilder { c.pad = p; return c }

// Bias adds (default) or omits a per-filter bias; omit it before batch norm.
func (c *ConvBuilder) Bias(b bool) *ConvBuilder { c.bias = b; return c }

// Done builds the layer: variables "weights" [k, k, C, F] (He-uniform) and "biases" [F].
func (c *ConvBuilder) Done() *graph.Node {
	if c.filters <= 0 {
		exceptions.Panicf("engine.Conv: Filters not set")
	}
	pad := c.pad
	if pad < 0 {
		pad = (c.kernel - 1) / 2
	}
	cin := c.x.Shape().Dimensions[3]
	y := Conv2D(c.x, ConvWeights(c.ctx, c.x.Graph(), c.x.DType(), c.kernel, cin, c.filters), c.stride, pad)
	if c.bias {
		y = graph.Add(y, graph.ExpandLeftToRank(ConvBias(c.ctx, c.x.Graph(), c.x.DType(), c.filters), 4))
	}
	return y
}

// String describes the layer for error messages.
func (c *ConvBuilder) String() string {
	return fmt.Sprintf("Conv(filters=%d, kernel=%d, stride=%d, pad=%d)", c.filters, c.kernel, c.stride, c.pad)
}

// zeroPad pads axes 1 and 2 of x [B, H, W, C] with p zeros on each side: one
// graph.Pad, whose gradient (missing in GoMLX v0.27.2) we set to the slice
// of the interior. Should setting it fail (a GoMLX without the custom
// gradient field), zero blocks are concatenated instead, which has a stock
// gradient but costs two extra copies of x each way.
func zeroPad(x *graph.Node, p int) *graph.Node {
	d := x.Shape().Dimensions
	padded := graph.Pad(x, graph.ScalarZero(x.Graph(), x.DType()),
		backends.PadAxis{}, backends.PadAxis{Start: p, End: p}, backends.PadAxis{Start: p, End: p}, backends.PadAxis{})
	if setCustomVJP(padded, func(_ *graph.Node, v []*graph.Node, _ shapes.Shape) []*graph.Node {
		interior := graph.Slice(v[0], graph.AxisRange(), graph.AxisRange(p, p+d[1]), graph.AxisRange(p, p+d[2]), graph.AxisRange())
		return []*graph.Node{interior, nil} // nothing flows into the constant fill value
	}) {
		return padded
	}
	zeros := func(dims ...int) *graph.Node { return graph.Zeros(x.Graph(), shapes.Make(x.DType(), dims...)) }
	rows := zeros(d[0], p, d[2], d[3])
	x = graph.Concatenate([]*graph.Node{rows, x, rows}, 1)
	cols := zeros(d[0], d[1]+2*p, p, d[3])
	return graph.Concatenate([]*graph.Node{cols, x, cols}, 2)
}

// gatherIm2col reports whether g's convolutions build their im2col matrix
// with one row Gather (im2colGather) rather than one Slice per kernel tap:
// on the pure-Go backend with our fast Gather and ScatterSum executors
// (fastgather.go), where it is one pass over the matrix each way instead of
// a slice, a concatenation, and in the gradient a full-size Pad and Add per
// tap. Other backends (XLA) keep the slices, which they fuse.
func gatherIm2col(g *graph.Graph) bool {
	if !kernels.GatherInstalled() {
		return false
	}
	_, ok := g.Backend().(*simplego.Backend)
	return ok
}

// im2colGather returns the im2col matrix [B, Ho, Wo, kh*kw*C] of the padded
// x [B, Hp, Wp, C]: row (b, ho, wo) holds the pixels x[b, ho·s+i, wo·s+j, :]
// for the kernel taps (i, j) in row-major order. Its gradient is the stock
// one of Gather, a ScatterSum of the rows.
func im2colGather(x *graph.Node, kh, kw, stride, ho, wo int) *graph.Node {
	d := x.Shape().Dimensions
	b, hp, wp, c := d[0], d[1], d[2], d[3]
	idx := make([]int32, 0, b*ho*wo*kh*kw)
	for n := 0; n < b; n++ {
		for y := 0; y < ho; y++ {
			for z := 0; z < wo; z++ {
				for i := 0; i < kh; i++ {
					for j := 0; j < kw; j++ {
						idx = append(idx, int32((n*hp+y*stride+i)*wp+z*stride+j))
					}
				}
			}
		}
	}
	rows := graph.Reshape(x, b*hp*wp, c)
	cols := graph.Gather(rows, graph.Const(x.Graph(), tensors.FromFlatDataAndDimensions(idx, len(idx), 1)))
	return graph.Reshape(cols, b, ho, wo, kh*kw*c)
}

// nativeConv2D is Conv2D as one ConvGeneral node (NHWC, HWIO) whose
// gradient is two more (convFamily). Only on the pure-Go backend with
// oneDNN's convolutions installed (fastconv.go), which run all three node
// kinds natively with no im2col matrix. It returns nil (the caller uses
// im2col) anywhere else, or for a geometry whose stride does not divide
// h+2·pad−kh exactly, or pad ≥ kernel size (the data gradient's padding
// would be negative).
func nativeConv2D(x, kernel *graph.Node, stride, pad int) *graph.Node {
	if !kernels.ConvInstalled() || x.DType() != dtypes.Float32 || kernel.DType() != dtypes.Float32 || customVJPOffset == 0 {
		return nil
	}
	if _, ok := x.Graph().Backend().(*simplego.Backend); !ok {
		return nil
	}
	f, ok := newConvFamily(x, kernel, stride, pad)
	if !ok {
		return nil
	}
	return f.forward(x, kernel)
}

// convFamily builds a convolution of one geometry and its gradients as
// ConvGeneral nodes with our own gradients, GoMLX's being wrong for even
// kernels (GOMLX-NOTES trap 1):
//
//	forward  y  = F(x, k)                        x ⊛ k
//	data     dx = D(g, k) = F_xᵀ g               g dilated by the stride ⊛ reversed k
//	weights  dk = W(x, g) = F_kᵀ g               x ⊛ g dilated by the stride, over the batch
//
// All three are bilinear, and each one's gradient is made of the other two:
// ⟨D(g,k), v⟩ = ⟨g, F(v,k)⟩ and ⟨W(x,g), u⟩ = ⟨F(x,u), g⟩ give
//
//	∂F: ḡ ↦ (D(ḡ, k), W(x, ḡ))
//	∂D: v ↦ (F(v, k), W(v, g))
//	∂W: u ↦ (D(g, u), F(x, u))
//
// so gradients of gradients of any order are convolutions again: that is
// what the R1 penalty (the gradient of ‖∂D(x)/∂x‖² with respect to D's
// weights) needs.
type convFamily struct {
	stride, pad, kh, kw int
}

// newConvFamily checks that the geometry is one the three nodes can express
// exactly: the stride divides h+2·pad−kh (so D restores x's shape) and the
// padding is less than the kernel (so D's padding is not negative).
func newConvFamily(x, kernel *graph.Node, stride, pad int) (convFamily, bool) {
	d, k := x.Shape().Dimensions, kernel.Shape().Dimensions
	kh, kw := k[0], k[1]
	if (d[1]+2*pad-kh)%stride != 0 || (d[2]+2*pad-kw)%stride != 0 || pad > kh-1 || pad > kw-1 {
		return convFamily{}, false
	}
	return convFamily{stride: stride, pad: pad, kh: kh, kw: kw}, true
}

func convAxes(a [12]int) backends.ConvolveAxesConfig {
	return backends.ConvolveAxesConfig{InputBatch: a[0], InputChannels: a[1], InputSpatial: []int{a[2], a[3]},
		KernelInputChannels: a[4], KernelOutputChannels: a[5], KernelSpatial: []int{a[6], a[7]},
		OutputBatch: a[8], OutputChannels: a[9], OutputSpatial: []int{a[10], a[11]}}
}

var one2 = []int{1, 1}

// withVJP sets vjp on n; the family is only built where setCustomVJP works
// (nativeConv2D checks with the first node), so failing later is a bug.
func withVJP(n *graph.Node, vjp graph.VJP) *graph.Node {
	if !setCustomVJP(n, vjp) {
		exceptions.Panicf("engine: cannot set the gradient of a %s node", n.Type())
	}
	return n
}

// forward is F(x, k): [B, H, W, C] ⊛ [kh, kw, C, F] → [B, Ho, Wo, F].
func (c convFamily) forward(x, k *graph.Node) *graph.Node {
	s := []int{c.stride, c.stride}
	y := graph.ConvGeneral(x, k, convAxes(kernels.ConvAxesForward), s, [][2]int{{c.pad, c.pad}, {c.pad, c.pad}}, one2, one2, 1, 1)
	return withVJP(y, func(_ *graph.Node, v []*graph.Node, _ shapes.Shape) []*graph.Node {
		return []*graph.Node{c.data(v[0], k), c.weights(x, v[0])}
	})
}

// data is D(g, k): the adjoint of F in x, from g [B, Ho, Wo, F] to [B, H, W, C].
func (c convFamily) data(g, k *graph.Node) *graph.Node {
	rk := reverseSpatial(k)
	pads := [][2]int{{c.kh - 1 - c.pad, c.kh - 1 - c.pad}, {c.kw - 1 - c.pad, c.kw - 1 - c.pad}}
	dx := graph.ConvGeneral(g, rk, convAxes(kernels.ConvAxesData), one2, pads, []int{c.stride, c.stride}, one2, 1, 1)
	return withVJP(dx, func(_ *graph.Node, v []*graph.Node, _ shapes.Shape) []*graph.Node {
		// The node's second input is the reversed kernel: its adjoint is
		// reversed too, and reverseSpatial's gradient carries it back to k.
		return []*graph.Node{c.forward(v[0], k), reverseSpatial(c.weights(v[0], g))}
	})
}

// reverseSpatial flips a kernel's two spatial axes. GoMLX v0.27.2 has no
// gradient for Reverse; a flip is its own adjoint.
func reverseSpatial(k *graph.Node) *graph.Node {
	return withVJP(graph.Reverse(k, 0, 1), func(_ *graph.Node, v []*graph.Node, _ shapes.Shape) []*graph.Node {
		return []*graph.Node{reverseSpatial(v[0])}
	})
}

// weights is W(x, g): the adjoint of F in k, from g [B, Ho, Wo, F] to [kh, kw, C, F].
func (c convFamily) weights(x, g *graph.Node) *graph.Node {
	dk := graph.ConvGeneral(x, g, convAxes(kernels.ConvAxesWeights), one2, [][2]int{{c.pad, c.pad}, {c.pad, c.pad}}, one2, []int{c.stride, c.stride}, 1, 1)
	return withVJP(dk, func(_ *graph.Node, v []*graph.Node, _ shapes.Shape) []*graph.Node {
		return []*graph.Node{c.data(g, v[0]), c.forward(x, v[0])}
	})
}

// ConvWeights returns the kernel variable "weights" [k, k, cin, filters] of a
// convolution layer in ctx, He-initialised; layers that transform the kernel
// (spectral norm) call it directly.
func ConvWeights(ctx *context.Context, g *graph.Graph, dt dtypes.DType, k, cin, filters int) *graph.Node {
	return ctx.WithInitializer(initializers.HeFn(ctx)).VariableWithShape("weights", shapes.Make(dt, k, k, cin, filters)).ValueGraph(g)
}

// ConvBias returns the zero-initialised bias variable "biases" [filters].
func ConvBias(ctx *context.Context, g *graph.Graph, dt dtypes.DType, filters int) *graph.Node {
	return ctx.WithInitializer(initializers.Zero).VariableWithShape("biases", shapes.Make(dt, filters)).ValueGraph(g)
}
