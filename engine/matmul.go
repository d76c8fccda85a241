package engine

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/support/exceptions"
)

// MatMul returns a·b for a [M, K] and b [K, N] with a gradient that is two
// plain matmuls (g·bᵀ and aᵀ·g).
//
// Why not graph.MatMul: in GoMLX v0.27.2 the graph.DotGeneral gradient broadcasts
// both operands to an [M, N, K] intermediate before reducing it (GOMLX-NOTES
// trap 5); for an im2col convolution of a GAN step that is gigabytes and
// seconds. GoMLX has no public multi-input custom gradient, so the gradient is
// wired with three identity nodes that carry custom gradients:
//   - the value is computed from stop-gradient copies of a and b;
//   - a zero-valued link (0·Σa' + 0·Σb') makes a' and b' reachable from the output;
//   - the output's identity records the incoming adjoint g, and the identities
//     a', b' ignore what reaches them through the link and return g·bᵀ, aᵀ·g.
//
// Reverse-mode autodiff visits the output before a' and b' (they are upstream),
// so g is always recorded before it is read, once per graph.Gradient call.
func MatMul(a, b *graph.Node) *graph.Node {
	if a.Rank() != 2 || b.Rank() != 2 || a.Shape().Dimensions[1] != b.Shape().Dimensions[0] {
		exceptions.Panicf("engine.MatMul: want [M,K]·[K,N], got %s · %s", a.Shape(), b.Shape())
	}
	var g *graph.Node // adjoint of the output, recorded during backprop
	aLink := graph.IdentityWithCustomGradient(a, func(_, _ *graph.Node) *graph.Node {
		return dot2(g, b, 1, 1) // [M,N]·[K,N]ᵀ = [M,K]
	})
	bLink := graph.IdentityWithCustomGradient(b, func(_, _ *graph.Node) *graph.Node {
		return dot2(a, g, 0, 0) // [M,K]ᵀ·[M,N] = [K,N]
	})
	y := dot2(graph.StopGradient(a), graph.StopGradient(b), 1, 0)
	zero := graph.MulScalar(graph.Add(graph.ReduceAllSum(aLink), graph.ReduceAllSum(bLink)), 0)
	y = graph.Add(y, zero)
	return graph.IdentityWithCustomGradient(y, func(_, v *graph.Node) *graph.Node {
		g = v
		return v
	})
}

// dot2 contracts axis ca of a with axis cb of b (both rank 2).
func dot2(a, b *graph.Node, ca, cb int) *graph.Node {
	return graph.DotGeneral(a, []int{ca}, nil, b, []int{cb}, nil)
}
