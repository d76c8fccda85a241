package engine

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/gomlx/gomlx/pkg/support/exceptions"
)

// BatchNormTrain normalises x over every axis but the last (channels) with
// the batch's own statistics, then scales and shifts: y = (x-μ)/√(σ²+eps)·scale + offset.
// It returns y and the batch mean and variance [C].
//
// Why our own: GoMLX's batch norm asks the backend for a fused training op
// that the pure-Go backend lacks (GOMLX-NOTES trap 3). Written with plain
// reductions it runs, and differentiates, on every backend.
func BatchNormTrain(x, scale, offset *graph.Node, eps float64) (y, mean, variance *graph.Node) {
	axes := make([]int, x.Rank()-1)
	for i := range axes {
		axes[i] = i
	}
	mean = graph.ReduceMean(x, axes...)
	centred := graph.Sub(x, graph.ExpandLeftToRank(mean, x.Rank()))
	variance = graph.ReduceMean(graph.Square(centred), axes...)
	return normalise(centred, variance, scale, offset, eps), mean, variance
}

func normalise(centred, variance, scale, offset *graph.Node, eps float64) *graph.Node {
	r := centred.Rank()
	inv := graph.Inverse(graph.Sqrt(graph.AddScalar(variance, eps))) // Rsqrt has no gradient in v0.27.2
	y := graph.Mul(centred, graph.ExpandLeftToRank(graph.Mul(inv, scale), r))
	return graph.Add(y, graph.ExpandLeftToRank(offset, r))
}

// BatchNorm is a batch-normalisation layer over the last axis. In training
// graphs it uses batch statistics and updates the moving averages (variables
// "mean" and "variance", not trainable) with the given momentum; otherwise it
// uses the moving averages.
func BatchNorm(ctx *context.Context, x *graph.Node, training bool) *graph.Node {
	const eps, momentum = 1e-5, 0.9
	c := x.Shape().Dimensions[x.Rank()-1]
	dt := x.DType()
	g := x.Graph()
	scale := ctx.WithInitializer(initializers.One).VariableWithShape("scale", shapes.Make(dt, c)).ValueGraph(g)
	offset := ctx.WithInitializer(initializers.Zero).VariableWithShape("offset", shapes.Make(dt, c)).ValueGraph(g)
	meanVar := ctx.WithInitializer(initializers.Zero).VariableWithShape("mean", shapes.Make(dt, c)).SetTrainable(false)
	varVar := ctx.WithInitializer(initializers.One).VariableWithShape("variance", shapes.Make(dt, c)).SetTrainable(false)
	if !training {
		centred := graph.Sub(x, graph.ExpandLeftToRank(meanVar.ValueGraph(g), x.Rank()))
		return normalise(centred, varVar.ValueGraph(g), scale, offset, eps)
	}
	y, mean, variance := BatchNormTrain(x, scale, offset, eps)
	ema := func(v *context.Variable, batch *graph.Node) {
		old := v.ValueGraph(g)
		v.SetValueGraph(graph.Add(graph.MulScalar(old, momentum), graph.MulScalar(graph.StopGradient(batch), 1-momentum)))
	}
	ema(meanVar, mean)
	ema(varVar, variance)
	return y
}

// Upsample2x repeats every pixel of x [B, H, W, C] into a 2×2 block.
//
// Why not a transposed convolution: with input dilation it has no gradient in
// GoMLX v0.27.2 (trap 4), and nearest upsampling followed by a convolution is
// also free of the checkerboard artefacts transposed convolutions make.
func Upsample2x(x *graph.Node) *graph.Node {
	d := x.Shape().Dimensions
	if len(d) != 4 {
		exceptions.Panicf("engine.Upsample2x: want [B,H,W,C], got %s", x.Shape())
	}
	b, h, w, c := d[0], d[1], d[2], d[3]
	x = graph.Reshape(x, b, h, 1, w, 1, c)
	up := graph.BroadcastToDims(x, b, h, 2, w, 2, c)
	// Gradient: the sum of each 2×2 block. The stock one is a ReduceSum over
	// axes 2 and 4 at once, which are not adjacent, so the pure-Go backend's
	// generic reducer runs it; two single-axis sums take the fast one
	// (fastbroadcast.go). Same values up to the order of four additions.
	if len(up.Inputs()) == 1 && up.Inputs()[0] == x {
		setCustomVJP(up, func(_ *graph.Node, v []*graph.Node, _ shapes.Shape) []*graph.Node {
			return []*graph.Node{graph.Reshape(graph.ReduceSum(graph.ReduceSum(v[0], 4), 2), b, h, 1, w, 1, c)}
		})
	}
	return graph.Reshape(up, b, 2*h, 2*w, c)
}

// PixelNorm divides each feature vector (the last axis) of x by its root
// mean square: x·s with s = 1/√(mean(x²) + eps), as in ProGAN's generator.
// Its gradient is written out, dx = s·(g − x·s²·mean(g·x)): five
// elementwise passes over x where the stock chain rule through the square,
// the mean's broadcast, the product and the sum of the two paths takes
// eight. Set on the final product (setCustomVJP); without that field the
// stock gradient is used.
func PixelNorm(x *graph.Node, eps float64) *graph.Node {
	c := float64(x.Shape().Dimensions[x.Rank()-1])
	ms := graph.ReduceAndKeep(graph.Square(x), graph.ReduceMean, -1)
	s := graph.Inverse(graph.Sqrt(graph.AddScalar(ms, eps)))
	y := graph.Mul(x, s)
	if in := y.Inputs(); y.Type() == graph.NodeTypeMul && len(in) == 2 && in[0] == x && in[1] == s {
		setCustomVJP(y, func(_ *graph.Node, v []*graph.Node, _ shapes.Shape) []*graph.Node {
			g := v[0]
			k := graph.MulScalar(graph.Mul(graph.Square(s), graph.ReduceAndKeep(graph.Mul(g, x), graph.ReduceSum, -1)), 1/c)
			return []*graph.Node{graph.Mul(graph.Sub(g, graph.Mul(x, k)), s), nil}
		})
	}
	return y
}

// Dense is a fully connected layer on x [B, in] → [B, out] with He-uniform
// weights [in, out] and zero biases [out], using MatMul for its gradient.
func Dense(ctx *context.Context, x *graph.Node, out int, bias bool) *graph.Node {
	if x.Rank() != 2 {
		exceptions.Panicf("engine.Dense: want [B, in], got %s", x.Shape())
	}
	in := x.Shape().Dimensions[1]
	w := ctx.WithInitializer(initializers.HeFn(ctx)).VariableWithShape("weights", shapes.Make(x.DType(), in, out)).ValueGraph(x.Graph())
	y := MatMul(x, w)
	if bias {
		b := ctx.WithInitializer(initializers.Zero).VariableWithShape("biases", shapes.Make(x.DType(), out)).ValueGraph(x.Graph())
		y = graph.Add(y, graph.ExpandLeftToRank(b, 2))
	}
	return y
}

// SpectralScale divides w by its largest singular value estimated as uᵀ·W·v,
// where W is w reshaped to [rows, cols] (rows = product of all axes but the
// last) and u [rows], v [cols] are fixed unit vectors (gradients do not flow
// into them, as in Miyato et al. 2018).
func SpectralScale(w, u, v *graph.Node) *graph.Node {
	d := w.Shape().Dimensions
	cols := d[len(d)-1]
	m := graph.Reshape(w, w.Shape().Size()/cols, cols)
	sigma := graph.ReduceAllSum(graph.Mul(graph.ExpandAxes(u, -1), graph.Mul(m, graph.ExpandAxes(v, 0))))
	return graph.Div(w, sigma)
}

// SpectralNorm returns w normalised by its spectral norm, refining the
// estimate with one power iteration per training step; the left singular
// vector lives in the non-trainable variable "sn_u".
func SpectralNorm(ctx *context.Context, w *graph.Node, training bool) *graph.Node {
	g := w.Graph()
	d := w.Shape().Dimensions
	cols := d[len(d)-1]
	rows := w.Shape().Size() / cols
	uVar := ctx.WithInitializer(initializers.RandomNormalFn(ctx, 1)).VariableWithShape("sn_u", shapes.Make(w.DType(), rows)).SetTrainable(false)
	m := graph.StopGradient(graph.Reshape(w, rows, cols))
	u := uVar.ValueGraph(g)
	unit := func(x *graph.Node) *graph.Node {
		return graph.Div(x, graph.AddScalar(graph.Sqrt(graph.ReduceAllSum(graph.Square(x))), 1e-12))
	}
	v := unit(graph.ReduceSum(graph.Mul(graph.ExpandAxes(u, -1), m), 0)) // Wᵀu
	u = unit(graph.ReduceSum(graph.Mul(m, graph.ExpandAxes(v, 0)), 1))   // W v
	if training {
		uVar.SetValueGraph(u)
	}
	return SpectralScale(w, graph.StopGradient(u), graph.StopGradient(v))
}

// Safe runs fn, turning a panic raised while building or running a graph
// (GoMLX reports most errors by panicking) into an error, so that no panic
// crosses a package boundary.
func Safe(what string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("%s: %w", what, e) // callers may test it with errors.Is
			} else {
				err = fmt.Errorf("%s: %v", what, r)
			}
		}
	}()
	return fn()
}

// LeakyReLU returns max(x, slope·x) for 0 < slope < 1, with the same value as
// graph.Max(x, graph.MulScalar(x, slope)) and a cheaper gradient:
// v·max(sign(x), slope), three elementwise passes where the stock gradient
// of Max and MulScalar takes nine (two subtractions, three signs, an add,
// three multiplies and the sum of the two adjoints). Where x is exactly 0 it
// gives slope instead of the stock 1; both are subgradients. The gradient is
// set on the Max node (setCustomVJP); without that field the stock gradient
// is used.
func LeakyReLU(x *graph.Node, slope float64) *graph.Node {
	if !(slope > 0 && slope < 1) {
		exceptions.Panicf("engine.LeakyReLU: slope %g must be in (0, 1)", slope)
	}
	y := graph.Max(x, graph.MulScalar(x, slope))
	if y.Type() == graph.NodeTypeMax && len(y.Inputs()) == 2 && y.Inputs()[0] == x {
		setCustomVJP(y, func(_ *graph.Node, v []*graph.Node, _ shapes.Shape) []*graph.Node {
			// The mask is piecewise constant: its derivative is zero, and
			// Sign has no gradient in GoMLX, so a gradient of this gradient
			// (R1) must not look into it.
			m := graph.Max(graph.StopGradient(graph.Sign(x)), graph.Scalar(x.Graph(), x.DType(), slope))
			return []*graph.Node{graph.Mul(v[0], m), nil}
		})
	}
	return y
}

// Encoder is the small convolutional encoder the judges share (the oracle
// reading factors, the reconstructor telling directions apart): a 3×3 stem of
// Width filters, then 4×4 stride-2 convolutions doubling the width (at most
// MaxWidth) while the side is above MinSide and even, then a dense hidden
// layer of Hidden units, all with leaky ReLU (0.2). Its variables live in
// the scopes stem, down0, down1, … and hidden of ctx.
type Encoder struct {
	Width, MaxWidth, MinSide, Hidden int
}

// Apply encodes x [B, H, W, C] into features [B, Hidden].
func (e Encoder) Apply(ctx *context.Context, x *graph.Node) *graph.Node {
	b := x.Shape().Dimensions[0]
	x = LeakyReLU(Conv(ctx.In("stem"), x).Filters(e.Width).Kernel(3).Done(), 0.2)
	w := e.Width
	for i := 0; x.Shape().Dimensions[1] > e.MinSide && x.Shape().Dimensions[1]%2 == 0; i++ {
		w = min(2*w, e.MaxWidth)
		x = LeakyReLU(Conv(ctx.Inf("down%d", i), x).Filters(w).Kernel(4).Stride(2).Pad(1).Done(), 0.2)
	}
	d := x.Shape().Dimensions
	return LeakyReLU(Dense(ctx.In("hidden"), graph.Reshape(x, b, d[1]*d[2]*d[3]), e.Hidden, true), 0.2)
}
