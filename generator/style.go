package generator

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"

	"latentedit/engine"
)

// The style-based generator (StyleGAN2's design at the scale of this
// project): z is mapped to w by a few dense layers; a learned constant 4×4
// grid is grown by blocks of nearest upsampling and one modulated 3×3
// convolution each, every block styled by its own w (so W+ = [B, Styles,
// Latent] exists for editors and inversion); each block adds its RGB image,
// upsampled, to the next (to-RGB skips). Its discriminator is residual with
// a minibatch-standard-deviation layer, and it is trained with lazy R1.

// Styles is the number of per-block styles: the 4×4 block and each
// upsampling block (stylegan2: one per convolution and one for the last
// to-RGB, rosinality's n_latent = 2·log2(size) − 2).
func (a Arch) Styles() int {
	if a.Kind == ArchStyleGAN2 {
		return 2*a.Ups + 2
	}
	return a.Ups + 1
}

// Mapping maps z [B, Latent] to w [B, Latent]: pixel norm, then MapDepth
// dense layers with leaky ReLU.
func (a Arch) Mapping(ctx *context.Context, z *graph.Node) *graph.Node {
	if a.Kind == ArchStyleGAN2 {
		return a.mappingStyleGAN2(ctx, z)
	}
	x := pixelNorm(z)
	for i := 0; i < a.MapDepth; i++ {
		x = lrelu(engine.Dense(ctx.Inf("map%d", i), x, a.Latent, true))
	}
	return x
}

// wAvgScope is the running mean of w (non-trainable), the centre that
// truncation pulls styles towards.
const wAvgName = "w_avg"

// trackWAvg updates the running mean of w with the batch's (decay 0.995,
// StyleGAN's): called by the training step only.
func trackWAvg(ctx *context.Context, w *graph.Node) {
	g := w.Graph()
	v := ctx.WithInitializer(initializers.Zero).VariableWithShape(wAvgName, shapes.Make(w.DType(), w.Shape().Dimensions[1])).SetTrainable(false)
	mean := graph.ReduceMean(graph.StopGradient(w), 0)
	v.SetValueGraph(graph.Add(graph.MulScalar(v.ValueGraph(g), 0.995), graph.MulScalar(mean, 0.005)))
}

// truncate pulls w towards the running mean: w̄ + ψ(w − w̄). ψ = 1 is the
// identity; smaller ψ trades variety for typical, cleaner images.
func truncate(ctx *context.Context, w *graph.Node, psi float64) *graph.Node {
	if psi == 1 || psi == 0 {
		return w
	}
	avg := ctx.WithInitializer(initializers.Zero).VariableWithShape(wAvgName, shapes.Make(w.DType(), w.Shape().Dimensions[1])).SetTrainable(false).ValueGraph(w.Graph())
	avg = graph.ExpandAxes(avg, 0)
	return graph.Add(avg, graph.MulScalar(graph.Sub(w, avg), psi))
}

// broadcastStyles repeats w [B, Latent] for every block: [B, Styles, Latent].
func (a Arch) broadcastStyles(w *graph.Node) *graph.Node {
	d := w.Shape().Dimensions
	return graph.BroadcastToDims(graph.ExpandAxes(w, 1), d[0], a.Styles(), d[1])
}

// Synthesis draws images [B, S, S, C] in [-1, 1] from per-block styles ws
// [B, Styles, Latent]. With Noise, each block adds a noise image [B, H, W, 1]
// times a learned strength: random in training (the context's random
// stream, which checkpoints carry), a fixed buffer saved with the weights at
// sampling, so that G stays a function of its latent.
func (a Arch) Synthesis(ctx *context.Context, ws *graph.Node, training bool) *graph.Node {
	if a.Kind == ArchStyleGAN2 {
		return a.synthesisStyleGAN2(ctx, ws) // import-only: never in training
	}
	b := ws.Shape().Dimensions[0]
	style := func(i int) *graph.Node {
		return graph.Reshape(graph.Slice(ws, graph.AxisRange(), graph.AxisElem(i), graph.AxisRange()), b, a.Latent)
	}
	w0 := a.width(-1)
	c := ctx.In("const").WithInitializer(initializers.RandomNormalFn(ctx, 1)).
		VariableWithShape("value", shapes.Make(ws.DType(), 1, a.Start, a.Start, w0)).ValueGraph(ws.Graph())
	x := graph.BroadcastToDims(c, b, a.Start, a.Start, w0)
	var rgb *graph.Node
	for i := 0; i <= a.Ups; i++ {
		f := w0
		if i > 0 {
			x = engine.Upsample2x(x)
			f = a.width(i - 1)
		}
		bctx := ctx.Inf("block%d", i)
		x = a.styledConv(bctx, "conv", "noise", x, style(i), f, training)
		// StyleGAN2 follows each upsampling convolution with a second one at
		// the same resolution (Convs 2): more capacity where the first only
		// has to undo the nearest upsampling's blocks. Both read the block's
		// style, so W+ keeps one code per block.
		if a.Convs == 2 && i > 0 {
			x = a.styledConv(bctx, "conv1", "noise1", x, style(i), f, training)
		}
		// The RGB of every scale is summed, each upsampled into the next:
		// early in training the coarse ones carry the image.
		y := modConv(bctx.In("to_rgb"), x, style(i), a.Channels, 1, false)
		if rgb == nil {
			rgb = y
		} else {
			rgb = graph.Add(engine.Upsample2x(rgb), y)
		}
	}
	return graph.Tanh(rgb)
}

// styledConv is one modulated, demodulated 3×3 convolution of a block, its
// noise (with Noise), bias and leaky ReLU, under the scopes conv and noise.
func (a Arch) styledConv(bctx *context.Context, conv, noise string, x, w *graph.Node, f int, training bool) *graph.Node {
	x = modConv(bctx.In(conv), x, w, f, 3, true)
	if a.Noise {
		x = graph.Add(x, blockNoise(bctx.In(noise), x, training))
	}
	bias := bctx.In(conv).WithInitializer(initializers.Zero).VariableWithShape("biases", shapes.Make(x.DType(), f)).ValueGraph(x.Graph())
	return lrelu(graph.Add(x, graph.ExpandLeftToRank(bias, 4)))
}

// blockNoise is the noise term of one block: strength · n, n [B, H, W, 1].
func blockNoise(ctx *context.Context, x *graph.Node, training bool) *graph.Node {
	d, g, dt := x.Shape().Dimensions, x.Graph(), x.DType()
	strength := ctx.WithInitializer(initializers.Zero).VariableWithShape("strength", shapes.Make(dt)).ValueGraph(g)
	fixed := ctx.WithInitializer(initializers.RandomNormalFn(ctx, 1)).VariableWithShape("fixed", shapes.Make(dt, 1, d[1], d[2], 1)).
		SetTrainable(false).ValueGraph(g)
	n := graph.BroadcastToDims(fixed, d[0], d[1], d[2], 1)
	if training {
		n = ctx.RandomNormal(g, shapes.Make(dt, d[0], d[1], d[2], 1))
	}
	return graph.Mul(n, strength)
}

// modConv is a modulated convolution written as input scaling, our
// convolution, then output demodulation (StyleGAN2's "non-fused" form):
// s = affine(w) + 1 scales each input channel; with demod, each output
// channel is divided by the norm its kernel would have after the scaling,
// √(Σ (k·s)²), so feature magnitudes stay ~1 whatever the style. The
// kernel is shared by the batch, so the convolution runs as one ordinary
// (oneDNN) convolution instead of B grouped ones.
func modConv(ctx *context.Context, x, w *graph.Node, filters, k int, demod bool) *graph.Node {
	cin := x.Shape().Dimensions[3]
	s := graph.OnePlus(engine.Dense(ctx.In("affine"), w, cin, true)) // [B, Cin]
	kern := engine.ConvWeights(ctx, x.Graph(), x.DType(), k, cin, filters)
	y := engine.Conv2D(graph.Mul(x, graph.ExpandAxes(s, 1, 2)), kern, 1, k/2)
	if !demod {
		return y
	}
	k2 := graph.ReduceSum(graph.Square(kern), 0, 1)                                           // [Cin, F]
	d := graph.Inverse(graph.Sqrt(graph.AddScalar(engine.MatMul(graph.Square(s), k2), 1e-8))) // [B, F] (Rsqrt has no gradient)
	return graph.Mul(y, graph.ExpandAxes(d, 1, 2))
}

// discriminateResNet is the style GAN's D: a 1×1 from-RGB, then per scale a
// residual block (3×3, then 4×4 stride 2; the skip an average pool and a
// 1×1), the sum scaled by 1/√2; at the smallest scale the minibatch
// standard deviation, a 3×3 convolution, a dense layer and the logit.
func (a Arch) discriminateResNet(ctx *context.Context, x *graph.Node) *graph.Node {
	b := x.Shape().Dimensions[0]
	h := lrelu(engine.Conv(ctx.In("from_rgb"), x).Filters(a.width(a.Ups - 1)).Kernel(1).Pad(0).Done())
	for i := 0; i < a.Ups; i++ {
		cout := a.width(a.Ups - 2 - i)
		bctx := ctx.Inf("res%d", i)
		y := lrelu(engine.Conv(bctx.In("conv_a"), h).Filters(h.Shape().Dimensions[3]).Kernel(3).Done())
		y = lrelu(engine.Conv(bctx.In("conv_b"), y).Filters(cout).Kernel(4).Stride(2).Pad(1).Done())
		skip := engine.Conv(bctx.In("skip"), avgPool2(h)).Filters(cout).Kernel(1).Pad(0).Bias(false).Done()
		h = graph.MulScalar(graph.Add(y, skip), 1/math.Sqrt2)
	}
	if a.MBStd {
		h = minibatchStd(h, 4)
	}
	h = lrelu(engine.Conv(ctx.In("final_conv"), h).Filters(a.width(-1)).Kernel(3).Done())
	d := h.Shape().Dimensions
	h = lrelu(engine.Dense(ctx.In("final_dense"), graph.Reshape(h, b, d[1]*d[2]*d[3]), a.width(-1), true))
	return graph.Reshape(engine.Dense(ctx.In("logit"), h, 1, true), b)
}

// avgPool2 averages 2×2 blocks of x [B, H, W, C] (H, W even).
func avgPool2(x *graph.Node) *graph.Node {
	d := x.Shape().Dimensions
	return graph.ReduceMean(graph.Reshape(x, d[0], d[1]/2, 2, d[2]/2, 2, d[3]), 2, 4)
}

// minibatchStd appends one channel to x [B, H, W, C]: the standard
// deviation of each feature over a group of group images, averaged over
// features and positions (ProGAN). A generator that draws one mode for
// every z gives a group whose spread is near zero, which D then sees; that
// is the layer's point against mode collapse. Image i is in group column
// i mod (B/group), so groups mix the batch's beginning and end.
func minibatchStd(x *graph.Node, group int) *graph.Node {
	d := x.Shape().Dimensions
	b, h, w, c := d[0], d[1], d[2], d[3]
	g := min(group, b)
	for b%g != 0 {
		g--
	}
	m := b / g
	y := graph.Reshape(x, g, m, h, w, c)
	centred := graph.Sub(y, graph.ReduceAndKeep(y, graph.ReduceMean, 0))
	std := graph.Sqrt(graph.AddScalar(graph.ReduceMean(graph.Square(centred), 0), 1e-8)) // [M, H, W, C]
	s := graph.ReduceMean(std, 1, 2, 3)                                                  // [M]
	s = graph.BroadcastToDims(graph.Reshape(s, 1, m, 1, 1, 1), g, m, h, w, 1)
	return graph.Concatenate([]*graph.Node{x, graph.Reshape(s, b, h, w, 1)}, -1)
}
