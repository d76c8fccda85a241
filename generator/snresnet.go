package generator

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
)

// The SNGAN ResNet generator of GANLatentDiscovery (models/SNGAN/
// sn_gen_resnet.py), the generator WarpedGANSpace and DeCurvEd also publish
// on. latentedit imports it (package interop maps its PyTorch parameters
// onto the scopes below); it has no training step here.
//
//	z [B, L] ─dense─▶ [B, 4, 4, W0]
//	block i:  x ─BN─ReLU─up2×─conv3×3─BN─ReLU─conv3×3─▶ (+) ◀─ up2×(x), then a 3×3 conv where W(i) ≠ W(i+1)
//	          ─BN─ReLU─conv3×3─tanh─▶ [B, S, S, C]
//
// Batch norm runs with its stored statistics: the imported generator is a
// pure function of z, as every latentedit model must be.

// SNResNet32 and SNResNet64 are the channel lists of the two published
// configurations (SN_RES_GEN_CONFIGS).
var (
	SNResNet32 = []int{256, 256, 256, 256}
	SNResNet64 = []int{1024, 512, 256, 128, 64}
)

// NewSNResNet is the layout of an SNGAN ResNet generator with the given
// widths: len(widths)-1 up-blocks from a 4×4 seed, so the image side is
// 4·2^(len(widths)-1). size, when not 0, must agree with that.
func NewSNResNet(widths []int, channels, latent, size int) (Arch, error) {
	a := Arch{Kind: ArchSNResNet, Channels: channels, Start: 4, Ups: len(widths) - 1, Latent: latent, Widths: widths}
	if len(widths) < 2 || len(widths) > 7 {
		return a, fmt.Errorf("arch sn_resnet: %d widths, want 2 to 7 (seed and 1–6 up-blocks)", len(widths))
	}
	for i, w := range widths {
		if w < 1 || w > 4096 {
			return a, fmt.Errorf("arch sn_resnet: width %d is %d, want 1 to 4096", i, w)
		}
	}
	a.Size = a.Start << a.Ups
	a.Base = widths[len(widths)-1]
	switch {
	case size != 0 && size != a.Size:
		return a, fmt.Errorf("arch sn_resnet: size %d, but %d up-blocks from 4×4 make %d", size, a.Ups, a.Size)
	case latent < 1 || (channels != 1 && channels != 3):
		return a, fmt.Errorf("arch sn_resnet: latent %d (≥1), channels %d (1 or 3)", latent, channels)
	}
	return a, nil
}

// generateSNResNet maps z [B, Latent] to images [B, Size, Size, Channels].
// Variables: dense, block{i}/{bn1,conv1,bn2,conv2,bypass}, bn_out, to_image.
func (a Arch) generateSNResNet(ctx *context.Context, z *graph.Node) *graph.Node {
	b := z.Shape().Dimensions[0]
	x := graph.Reshape(a.FirstLayer(ctx, z), b, a.Start, a.Start, a.Widths[0]) // [B, 4, 4, W0]
	for i := 0; i < a.Ups; i++ {
		x = snResBlock(ctx.Inf("block%d", i), x, a.Widths[i+1]) // [B, 2s, 2s, W(i+1)]
	}
	x = relu(engine.BatchNorm(ctx.In("bn_out"), x, false))
	x = engine.Conv(ctx.In("to_image"), x).Filters(a.Channels).Kernel(3).Done() // [B, S, S, C]
	return graph.Tanh(x)
}

// snResBlock is ResBlockGenerator: the residual path, plus x upsampled and,
// where the width changes, convolved (a 3×3 convolution in the source, not
// the 1×1 of some SNGAN variants).
func snResBlock(ctx *context.Context, x *graph.Node, out int) *graph.Node {
	h := relu(engine.BatchNorm(ctx.In("bn1"), x, false))
	h = engine.Conv(ctx.In("conv1"), engine.Upsample2x(h)).Filters(out).Kernel(3).Done()
	h = relu(engine.BatchNorm(ctx.In("bn2"), h, false))
	h = engine.Conv(ctx.In("conv2"), h).Filters(out).Kernel(3).Done()
	skip := engine.Upsample2x(x)
	if x.Shape().Dimensions[3] != out {
		skip = engine.Conv(ctx.In("bypass"), skip).Filters(out).Kernel(3).Done()
	}
	return graph.Add(h, skip)
}
