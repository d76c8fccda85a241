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
	x := graph.Concatenate([]*graph.Node{x0, x1, graph.Sub(x1, x0)}, -1) // [B, H, W, 3C]: the difference makes small moves visible
	h := engine.Encoder{Width: width, MaxWidth: 4 * width, MinSide: 7, Hidden: 8 * width}.Apply(ctx, x)
	b := x.Shape().Dimensions[0]
	logits = engine.Dense(ctx.In("direction"), h, k, true)
	eps = graph.Reshape(engine.Dense(ctx.In("amount"), h, 1, true), b)
	return logits, eps
}
