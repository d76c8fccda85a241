package generator

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"

	"latentedit/engine"
)

// The StyleGAN2 generator of rosinality's stylegan2-pytorch (the copy in
// GANLatentDiscovery's models/StyleGAN2/), the one most published
// checkpoints use. latentedit imports it (package interop maps its state
// dict, `g_ema`, onto the scopes below, with the equalized-learning-rate
// scales folded into the stored weights); it has no training step here.
//
//	z ─pixel norm─(dense, leaky ReLU 0.2 ·√2)×MapDepth─▶ w     (map{i})
//	const 4×4 ─conv0─▶ ─rgb0─▶ skip
//	per resolution r = 1…Ups: conv(2r−1) upsamples (transposed 3×3 stride 2,
//	then the [1,3,3,1] blur), conv(2r) keeps the size, rgb r adds its 1×1
//	image to the skip upsampled by the same blur; the image is the skip
//	(mapped from config.output_range [LO, HI] to [-1, 1] when given),
//	clamped to [-1, 1].
//
// Every conv is modulated and demodulated, adds a fixed noise buffer times a
// learned strength, then its bias and leaky ReLU 0.2 ·√2; conv j takes
// style j and rgb r style 2r+1 of the Styles() = 2·Ups+2 per-layer styles
// (W+, rosinality's n_latent).

// NewStyleGAN2 is the layout of a StyleGAN2 generator whose resolutions
// 4, 8, … have the given widths (rosinality's channels dict), mapping depth
// nMLP, latent (style) dimension and truncation ψ. size, when not 0, must
// agree with the widths.
func NewStyleGAN2(widths []int, latent, nMLP, size int, psi float64) (Arch, error) {
	a := Arch{Kind: ArchStyleGAN2, Channels: 3, Start: 4, Ups: len(widths) - 1, Latent: latent, Widths: widths,
		MapDepth: nMLP, Noise: true, Truncation: psi}
	if len(widths) < 2 || len(widths) > 9 {
		return a, fmt.Errorf("arch stylegan2: %d widths, want 2 to 9 (8 to 1024 pixels)", len(widths))
	}
	for i, w := range widths {
		if w < 1 || w > 4096 {
			return a, fmt.Errorf("arch stylegan2: width %d is %d, want 1 to 4096", i, w)
		}
	}
	a.Size, a.Base = a.Start<<a.Ups, widths[len(widths)-1]
	switch {
	case size != 0 && size != a.Size:
		return a, fmt.Errorf("arch stylegan2: size %d, but %d widths make %d", size, len(widths), a.Size)
	case latent < 1 || nMLP < 1 || nMLP > 16:
		return a, fmt.Errorf("arch stylegan2: latent %d (≥1), n_mlp %d ([1, 16])", latent, nMLP)
	}
	return a, nil
}

// StyleGAN2Widths is rosinality's channels dict for an image size and
// channel multiplier: 512 up to 32 pixels, then 256·m, 128·m, 64·m, 32·m,
// 16·m for 64 … 1024.
func StyleGAN2Widths(size, mult int) []int {
	var ws []int
	for r := 4; r <= size; r *= 2 {
		w := 512
		if r >= 64 {
			w = 16 * 1024 / r * mult
		}
		ws = append(ws, w)
	}
	return ws
}

// sqrt2LReLU is FusedLeakyReLU without its bias: leaky ReLU 0.2 times √2.
func sqrt2LReLU(x *graph.Node) *graph.Node { return graph.MulScalar(lrelu(x), math.Sqrt2) }

// mappingStyleGAN2 maps z to w: pixel norm, then MapDepth dense layers
// (weights already scaled by lr_mul/√in, biases by lr_mul).
func (a Arch) mappingStyleGAN2(ctx *context.Context, z *graph.Node) *graph.Node {
	x := pixelNorm(z)
	for i := 0; i < a.MapDepth; i++ {
		x = sqrt2LReLU(engine.Dense(ctx.Inf("map%d", i), x, a.Latent, true))
	}
	return x
}

// synthesisStyleGAN2 draws images [B, S, S, 3] in [-1, 1] from ws
// [B, Styles, Latent], with the fixed noise buffers.
func (a Arch) synthesisStyleGAN2(ctx *context.Context, ws *graph.Node) *graph.Node {
	b := ws.Shape().Dimensions[0]
	style := func(i int) *graph.Node {
		return graph.Reshape(graph.Slice(ws, graph.AxisRange(), graph.AxisElem(i), graph.AxisRange()), b, a.Latent)
	}
	w0 := a.Widths[0]
	c := ctx.In("const").WithInitializer(initializers.RandomNormalFn(ctx, 1)).
		VariableWithShape("value", shapes.Make(ws.DType(), 1, a.Start, a.Start, w0)).ValueGraph(ws.Graph())
	x := graph.BroadcastToDims(c, b, a.Start, a.Start, w0)
	x = styledConv(ctx.In("conv0"), x, style(0), w0, false)
	rgb := toRGB(ctx.In("rgb0"), x, style(1))
	for r := 1; r <= a.Ups; r++ {
		x = styledConv(ctx.Inf("conv%d", 2*r-1), x, style(2*r-1), a.Widths[r], true)
		x = styledConv(ctx.Inf("conv%d", 2*r), x, style(2*r), a.Widths[r], false)
		rgb = graph.Add(blur4(rgb, 1, 2, 2), toRGB(ctx.Inf("rgb%d", r), x, style(2*r+1)))
	}
	// rosinality returns the raw skip; our images are in [-1, 1] (Max/Min:
	// Clamp has no gradient in GoMLX v0.27.2), mapped there first from an
	// output range when model.json gives one.
	return clampUnit(a.toUnitRange(rgb))
}

// styledConv is StyledConv: a modulated, demodulated 3×3 convolution
// (upsampling ×2 when up), the noise buffer times its strength, the bias,
// leaky ReLU ·√2.
func styledConv(ctx *context.Context, x, w *graph.Node, filters int, up bool) *graph.Node {
	x = sg2ModConv(ctx, x, w, filters, 3, true, up)
	d, g, dt := x.Shape().Dimensions, x.Graph(), x.DType()
	nctx := ctx.In("noise")
	strength := nctx.WithInitializer(initializers.Zero).VariableWithShape("strength", shapes.Make(dt)).ValueGraph(g)
	fixed := nctx.WithInitializer(initializers.RandomNormalFn(ctx, 1)).VariableWithShape("fixed", shapes.Make(dt, 1, d[1], d[2], 1)).
		SetTrainable(false).ValueGraph(g)
	x = graph.Add(x, graph.Mul(fixed, strength))
	bias := ctx.WithInitializer(initializers.Zero).VariableWithShape("biases", shapes.Make(dt, filters)).ValueGraph(g)
	return sqrt2LReLU(graph.Add(x, graph.ExpandLeftToRank(bias, 4)))
}

// toRGB is ToRGB's convolution: a modulated 1×1 without demodulation, plus
// its bias (the skip is added by the caller).
func toRGB(ctx *context.Context, x, w *graph.Node) *graph.Node {
	y := sg2ModConv(ctx, x, w, 3, 1, false, false)
	bias := ctx.WithInitializer(initializers.Zero).VariableWithShape("biases", shapes.Make(y.DType(), 3)).ValueGraph(y.Graph())
	return graph.Add(y, graph.ExpandLeftToRank(bias, 4))
}

// sg2ModConv is ModulatedConv2d in the non-fused form (as modConv, but the
// style is the affine output itself, its bias initialised to 1 in the
// source): scale the input channels by s, convolve, demodulate each output
// channel by 1/√(Σ(k·s)² + 1e-8). With up, the convolution is the source's
// conv_transpose2d stride 2 — a convolution of the input with one zero
// between samples, padded by k−1, the kernel stored flipped — followed by
// the blur (pad 1, 1).
func sg2ModConv(ctx *context.Context, x, w *graph.Node, filters, k int, demod, up bool) *graph.Node {
	cin := x.Shape().Dimensions[3]
	s := engine.Dense(ctx.In("affine"), w, cin, true) // [B, Cin]
	kern := engine.ConvWeights(ctx, x.Graph(), x.DType(), k, cin, filters)
	x = graph.Mul(x, graph.ExpandAxes(s, 1, 2))
	var y *graph.Node
	if up {
		p := backends.PadAxis{Start: k - 1, End: k - 1, Interior: 1}
		x = graph.Pad(x, graph.ScalarZero(x.Graph(), x.DType()), backends.PadAxis{}, p, p, backends.PadAxis{})
		y = blur4(engine.Conv2D(x, kern, 1, 0), 0, 1, 1)
	} else {
		y = engine.Conv2D(x, kern, 1, k/2)
	}
	if !demod {
		return y
	}
	k2 := graph.ReduceSum(graph.Square(kern), 0, 1)                                           // [Cin, F]
	d := graph.Inverse(graph.Sqrt(graph.AddScalar(engine.MatMul(graph.Square(s), k2), 1e-8))) // [B, F]
	return graph.Mul(y, graph.ExpandAxes(d, 1, 2))
}

// blur4 is upfirdn2d with the [1,3,3,1] kernel as StyleGAN2 scales it for a
// 2× upsampling (its 2-D sum 4, so [1,3,3,1]/4 along each axis) on the H and
// W axes of x [B, H, W, C]: interior zeros between samples, lo and hi zeros
// at the ends, then the 4-tap filter. blur4(x, 1, 2, 2) is Upsample (2H
// out); blur4(y, 0, 1, 1) the Blur after a transposed convolution.
func blur4(x *graph.Node, interior, lo, hi int) *graph.Node {
	for _, ax := range []int{1, 2} {
		cfg := make([]backends.PadAxis, 4)
		cfg[ax] = backends.PadAxis{Start: lo, End: hi, Interior: interior}
		x = graph.Pad(x, graph.ScalarZero(x.Graph(), x.DType()), cfg...)
		n := x.Shape().Dimensions[ax] - 3
		var y *graph.Node
		for j, t := range []float64{0.25, 0.75, 0.75, 0.25} {
			tap := graph.MulScalar(graph.SliceAxis(x, ax, graph.AxisRange(j, j+n)), t)
			if y == nil {
				y = tap
			} else {
				y = graph.Add(y, tap)
			}
		}
		x = y
	}
	return x
}

// MapFloats maps n latents z (flat, n×LatentDim) to w, flat [n, LatentDim],
// through the mapping network of a style or stylegan2 model (no truncation).
func (m *Model) MapFloats(z []float32, n int) ([]float32, error) {
	m = m.Root()
	if k := m.Arch.Kind; k != ArchStyle && k != ArchStyleGAN2 {
		return nil, fmt.Errorf("map: arch %s has no mapping network", k)
	}
	return m.runStyle("map", z, n, []int{m.Info.LatentDim}, func(ctx *context.Context, z *graph.Node) *graph.Node {
		return m.Arch.Mapping(ctx.InAbsPath("/generator").Reuse(), z)
	})
}

// SynthesizeFloats draws n images (flat [n, H, W, C] in [-1, 1]) from
// per-layer styles ws (W+, flat [n, Styles, LatentDim]) of a style or
// stylegan2 model: no mapping, no truncation, the fixed noise.
func (m *Model) SynthesizeFloats(ws []float32, n int) ([]float32, error) {
	m = m.Root()
	if k := m.Arch.Kind; k != ArchStyle && k != ArchStyleGAN2 {
		return nil, fmt.Errorf("synthesize: arch %s has no per-layer styles", k)
	}
	return m.runStyle("synthesize", ws, n, []int{m.Arch.Styles(), m.Info.LatentDim}, func(ctx *context.Context, ws *graph.Node) *graph.Node {
		return m.Arch.Synthesis(ctx.InAbsPath("/generator").Reuse(), ws, false)
	})
}

// runStyle runs fn over in, n items of dims, in chunks of 64.
func (m *Model) runStyle(what string, in []float32, n int, dims []int, fn func(*context.Context, *graph.Node) *graph.Node) ([]float32, error) {
	for i, v := range in {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("%s: input value %d is %v", what, i, v)
		}
	}
	exec, err := context.NewExec(m.backend, m.ctx, fn)
	if err != nil {
		return nil, err
	}
	out, err := engine.RunChunks(what, exec, in, n, dims, 64, false)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}
