package discover

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
)

// Reconstruct is R: from an image pair x0, x1 [B, H, W, C] stacked on
// channels it predicts the direction's logits [B, K] and the amount ε [B].
// A small CNN: a 3×3 stem, then 4×4 stride-2 convolutions doubling the width
// (capped at 4×width) until the side is ≤ 7, a hidden dense layer, two heads.
func Reconstruct(ctx *context.Context, x0, x1 *graph.Node, k, width int) (logits, eps *graph.Node) {
	lrelu := func(x *graph.Node) *graph.Node { return engine.LeakyReLU(x, 0.2) }
	x := graph.Concatenate([]*graph.Node{x0, x1, graph.Sub(x1, x0)}, -1) // [B, H, W, 3C]: the difference makes small moves visible
	b := x.Shape().Dimensions[0]
	x = lrelu(engine.Conv(ctx.In("stem"), x).Filters(width).Kernel(3).Done())
	w := width
	for i := 0; x.Shape().Dimensions[1] > 7 && x.Shape().Dimensions[1]%2 == 0; i++ {
		w = min(2*w, 4*width)
		x = lrelu(engine.Conv(ctx.Inf("down%d", i), x).Filters(w).Kernel(4).Stride(2).Pad(1).Done())
	}
	d := x.Shape().Dimensions
	h := lrelu(engine.Dense(ctx.In("hidden"), graph.Reshape(x, b, d[1]*d[2]*d[3]), 8*width, true))
	logits = engine.Dense(ctx.In("direction"), h, k, true)
	eps = graph.Reshape(engine.Dense(ctx.In("amount"), h, 1, true), b)
	return logits, eps
}
