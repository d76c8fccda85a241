package generator

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
)

// Arch is the shape of the networks for one image size: images of Size×Size×
// Channels are built from a Start×Start grid by Ups nearest-upsample blocks.
type Arch struct {
	Size, Channels, Start, Ups, Base, Latent int

	Kind       string  // ArchDCGAN, ArchStyle, ArchSNResNet, ArchStyleGAN2 or ArchONNX
	Widths     []int   // sn_resnet, stylegan2: channels of the seed grid and at each larger resolution
	MapDepth   int     // style, stylegan2: dense layers of the mapping z → w
	Noise      bool    // style: per-block noise inputs (stylegan2: always)
	MBStd      bool    // GAN: a minibatch-standard-deviation layer in D
	Truncation float64 // style, stylegan2: ψ at sampling (1: none)
	Convs      int     // style: modulated convolutions per upsampling block (0, 1: one; 2: two, as StyleGAN2)
	// OutputRange: stylegan2, onnx: the raw output's [LO, HI], mapped to
	// [-1, 1] (nil: none).
	OutputRange []float64

	onnx *ONNXGraph // onnx: the graph, set by Load
}

// Architectures of the generator.
const (
	ArchDCGAN = "dcgan" // one linear layer, upsample + conv blocks, pixel norm (the default)
	ArchStyle = "style" // mapping network, constant input, modulated convolutions (style.go)
	// ArchSNResNet is the SNGAN ResNet generator of GANLatentDiscovery
	// (snresnet.go); latentedit does not train it, it imports it.
	ArchSNResNet = "sn_resnet"
	// ArchStyleGAN2 is rosinality's StyleGAN2 generator (stylegan2.go);
	// import-only like sn_resnet.
	ArchStyleGAN2 = "stylegan2"
)

// Arch is the network layout of a configuration.
func (c Config) Arch() (Arch, error) {
	if c.ArchName() == ArchSNResNet {
		return NewSNResNet(c.Widths, c.Channels, c.Latent, c.Size)
	}
	if c.ArchName() == ArchStyleGAN2 {
		a, err := NewStyleGAN2(c.Widths, c.Latent, c.MapDepth, c.Size, c.Truncation)
		a.OutputRange = c.OutputRange
		return a, err
	}
	if c.ArchName() == ArchONNX {
		a := Arch{Kind: ArchONNX, Size: c.Size, Channels: c.Channels, Latent: c.Latent, OutputRange: c.OutputRange}
		if c.Size < 1 || c.Latent < 1 || (c.Channels != 1 && c.Channels != 3) {
			return a, fmt.Errorf("arch onnx: size %d (≥1), latent %d (≥1), channels %d (1 or 3)", c.Size, c.Latent, c.Channels)
		}
		return a, nil
	}
	a, err := NewArch(c.Size, c.Channels, c.Base, c.Latent)
	if err != nil {
		return a, err
	}
	a.Kind, a.MapDepth, a.Noise, a.MBStd, a.Truncation, a.Convs = c.ArchName(), c.MapDepth, c.Noise, c.MBStd, c.Truncation, c.Convs
	if a.Kind == ArchStyle {
		a.MBStd = true // part of the style GAN's D
	}
	return a, nil
}

// NewArch derives the network layout from the image shape: the side is halved
// while it stays even and above 7 (32 → 4 with 3 blocks, 64 → 4 with 4,
// MNIST's 28 → 7 with 2).
func NewArch(size, channels, base, latent int) (Arch, error) {
	a := Arch{Size: size, Channels: channels, Start: size, Base: base, Latent: latent}
	for a.Start%2 == 0 && a.Start > 7 {
		a.Start /= 2
		a.Ups++
	}
	if a.Ups < 2 || a.Start > 8 {
		return a, fmt.Errorf("image size %d: need a side that halves at least twice down to ≤8 (28, 32, 64, 128…)", size)
	}
	if base < 4 || latent < 1 || (channels != 1 && channels != 3) {
		return a, fmt.Errorf("arch: base %d (≥4), latent %d (≥1), channels %d (1 or 3)", base, latent, channels)
	}
	return a, nil
}

// Width is the channel count of a dcgan generator after upsample block i
// (0-based); block -1 is the start grid (package interop lays out PyTorch
// weights by it).
func (a Arch) Width(i int) int { return a.width(i) }

// width is the channel count after upsample block i (0-based); block -1 is the
// start grid. Widths halve as the image grows, capped at 8×base.
func (a Arch) width(i int) int {
	w := a.Base << (a.Ups - 1 - i)
	if w > 8*a.Base {
		w = 8 * a.Base
	}
	return w
}

func lrelu(x *graph.Node) *graph.Node { return engine.LeakyReLU(x, 0.2) }

// pixelNorm scales each pixel's feature vector to unit mean square (ProGAN).
// The generator uses it instead of batch norm so that G(z) depends on z
// alone, never on the rest of the batch: an edit must not change with the
// company an image keeps, and no moving averages are needed at sampling.
func pixelNorm(x *graph.Node) *graph.Node { return engine.PixelNorm(x, 1e-8) }

// Generate maps z [B, Latent] to images [B, Size, Size, Channels] in [-1, 1].
// The same function is the GAN generator and the VAE decoder.
func (a Arch) Generate(ctx *context.Context, z *graph.Node) *graph.Node {
	switch a.Kind {
	case ArchStyle, ArchStyleGAN2:
		w := truncate(ctx, a.Mapping(ctx, z), a.Truncation)
		return a.Synthesis(ctx, a.broadcastStyles(w), false)
	case ArchSNResNet:
		return a.generateSNResNet(ctx, z)
	case ArchONNX:
		return a.generateONNX(ctx, z)
	}
	b := z.Shape().Dimensions[0]
	w0 := a.width(-1)
	x := a.FirstLayer(ctx, z)
	x = lrelu(pixelNorm(graph.Reshape(x, b, a.Start, a.Start, w0))) // [B, s0, s0, w0]
	for i := 0; i < a.Ups; i++ {
		x = engine.Upsample2x(x)                                                    // [B, 2s, 2s, w]
		x = engine.Conv(ctx.Inf("up%d", i), x).Filters(a.width(i)).Kernel(3).Done() // [B, 2s, 2s, w/2]
		x = lrelu(pixelNorm(x))
	}
	x = engine.Conv(ctx.In("to_image"), x).Filters(a.Channels).Kernel(3).Done() // [B, S, S, C]
	return graph.Tanh(x)
}

// FirstLayer is G's first, linear layer of pixelNorm(z): the dense layer
// to the start grid [B, Start²·width] (dcgan; sn_resnet without the pixel
// norm), the first mapping layer
// [B, Latent] (style, stylegan2). GANSpace takes principal axes of its output and SeFa
// factorises its weights.
func (a Arch) FirstLayer(ctx *context.Context, z *graph.Node) *graph.Node {
	switch a.Kind {
	case ArchStyle, ArchStyleGAN2:
		return engine.Dense(ctx.In(a.firstLayerScope()), pixelNorm(z), a.Latent, true)
	case ArchSNResNet: // SNGAN feeds z to its dense layer as it is
		return engine.Dense(ctx.In(a.firstLayerScope()), z, a.Start*a.Start*a.Widths[0], true)
	}
	return engine.Dense(ctx.In(a.firstLayerScope()), pixelNorm(z), a.Start*a.Start*a.width(-1), true)
}

// firstLayerScope is where FirstLayer's variables live under /generator.
func (a Arch) firstLayerScope() string {
	if a.Kind == ArchStyle || a.Kind == ArchStyleGAN2 {
		return "map0"
	}
	return "dense"
}

// trunk is the shared downsampling stack of the discriminator and the VAE
// encoder: a 3×3 stem, then Ups blocks of 4×4 stride-2 convolutions doubling
// the width, (for D, optionally) the minibatch standard deviation, flattened.
// norm is "sn" (spectral norm), "bn" (batch norm) or "".
func (a Arch) trunk(ctx *context.Context, x *graph.Node, norm string, mbstd, training bool) *graph.Node {
	b := x.Shape().Dimensions[0]
	conv := func(c *context.Context, x *graph.Node, filters, k, s, p int) *graph.Node {
		cb := engine.Conv(c, x).Filters(filters).Kernel(k).Stride(s).Pad(p)
		if norm != "sn" {
			return cb.Done()
		}
		return snConv(c, x, filters, k, s, p, training)
	}
	x = lrelu(conv(ctx.In("stem"), x, a.width(a.Ups-1), 3, 1, 1)) // [B, S, S, base]
	for i := 0; i < a.Ups; i++ {
		x = conv(ctx.Inf("down%d", i), x, a.width(a.Ups-2-i), 4, 2, 1) // [B, S/2^(i+1), …, 2^(i+1)·base]
		if norm == "bn" {
			x = engine.BatchNorm(ctx.Inf("bn%d", i), x, training)
		}
		x = lrelu(x)
	}
	if mbstd {
		x = minibatchStd(x, 4)
	}
	d := x.Shape().Dimensions
	return graph.Reshape(x, b, d[1]*d[2]*d[3])
}

// snConv is a convolution whose kernel is divided by its spectral norm.
func snConv(ctx *context.Context, x *graph.Node, filters, k, s, p int, training bool) *graph.Node {
	cin := x.Shape().Dimensions[3]
	// Create the weights through the ordinary layer's initialiser, then normalise.
	w := engine.ConvWeights(ctx, x.Graph(), x.DType(), k, cin, filters)
	y := engine.Conv2D(x, engine.SpectralNorm(ctx, w, training), s, p)
	return graph.Add(y, graph.ExpandLeftToRank(engine.ConvBias(ctx, x.Graph(), x.DType(), filters), 4))
}

// Discriminate returns one logit per image [B].
func (a Arch) Discriminate(ctx *context.Context, x *graph.Node, norm string, training bool) *graph.Node {
	if a.Kind == ArchStyle {
		return a.discriminateResNet(ctx, x)
	}
	h := a.trunk(ctx, x, norm, a.MBStd, training)
	return graph.Reshape(engine.Dense(ctx.In("logit"), h, 1, true), h.Shape().Dimensions[0])
}

// Encode returns the VAE posterior mean and log-variance [B, Latent].
func (a Arch) Encode(ctx *context.Context, x *graph.Node, training bool) (mu, logVar *graph.Node) {
	h := a.trunk(ctx, x, "", false, training)
	out := engine.Dense(ctx.In("posterior"), h, 2*a.Latent, true)
	mu = graph.Slice(out, graph.AxisRange(), graph.AxisRange(0, a.Latent))
	// Bounded so exp(logVar) cannot overflow early in training; Max/Min
	// rather than Clip because Clamp has no gradient in GoMLX v0.27.2.
	logVar = graph.Slice(out, graph.AxisRange(), graph.AxisRange(a.Latent, 2*a.Latent))
	logVar = graph.MinScalar(graph.MaxScalar(logVar, -12), 8)
	return mu, logVar
}
