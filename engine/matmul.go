package engine

import (
	"reflect"
	"unsafe"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/support/exceptions"
)

// MatMul returns a·b for a [M, K] and b [K, N] with a gradient that is two
// plain matmuls (g·bᵀ and aᵀ·g).
//
// Why not graph.MatMul: in GoMLX v0.27.2 the graph.DotGeneral gradient broadcasts
// both operands to an [M, N, K] intermediate before reducing it (GOMLX-NOTES
// trap 5); for an im2col convolution of a GAN step that is gigabytes and
// seconds. GoMLX has no public way to give a two-input node its own gradient,
// but every graph node carries one optional custom gradient function (the one
// IdentityWithCustomGradient sets), which the autodiff consults before the
// op's registered one: MatMul sets it on its DotGeneral node (setCustomVJP).
// Should a GoMLX upgrade remove that field, MatMul falls back to linkedMatMul,
// which gets the same gradient through public API at the cost of copies.
func MatMul(a, b *graph.Node) *graph.Node {
	if a.Rank() != 2 || b.Rank() != 2 || a.Shape().Dimensions[1] != b.Shape().Dimensions[0] {
		exceptions.Panicf("engine.MatMul: want [M,K]·[K,N], got %s · %s", a.Shape(), b.Shape())
	}
	y := dot2(a, b, 1, 0)
	if y.Type() == graph.NodeTypeDotGeneral && len(y.Inputs()) == 2 && y.Inputs()[0] == a && y.Inputs()[1] == b &&
		setCustomVJP(y, func(_ *graph.Node, v []*graph.Node, _ shapes.Shape) []*graph.Node {
			g := v[0]
			return []*graph.Node{
				dot2(g, b, 1, 1), // [M,N]·[K,N]ᵀ = [M,K]
				dot2(a, g, 0, 0), // [M,K]ᵀ·[M,N] = [K,N]
			}
		}) {
		return y
	}
	return linkedMatMul(a, b)
}

// customVJPOffset is where graph.Node keeps its custom gradient function
// (field customVJP of type graph.VJP), or 0 when this GoMLX has no such field.
var customVJPOffset = func() uintptr {
	f, ok := reflect.TypeOf(graph.Node{}).FieldByName("customVJP")
	if !ok || f.Type != reflect.TypeOf(graph.VJP(nil)) {
		return 0
	}
	return f.Offset
}()

// setCustomVJP makes vjp the gradient of node (one adjoint per input), as
// graph.IdentityWithCustomGradient does for its identity node. It reports
// false, changing nothing, when the field is missing or already set.
func setCustomVJP(node *graph.Node, vjp graph.VJP) bool {
	if customVJPOffset == 0 || node.CustomGradient() != nil {
		return false
	}
	*(*graph.VJP)(unsafe.Add(unsafe.Pointer(node), customVJPOffset)) = vjp
	return node.CustomGradient() != nil
}

// linkedMatMul is MatMul with its gradient wired through public API only,
// with three identity nodes that carry custom gradients:
//   - the value is computed from stop-gradient copies of a and b;
//   - a zero-valued link (0·Σa' + 0·Σb') makes a' and b' reachable from the output;
//   - the output's identity records the incoming adjoint g, and the identities
//     a', b' ignore what reaches them through the link and return g·bᵀ, aᵀ·g.
//
// Reverse-mode autodiff visits the output before a' and b' (they are upstream),
// so g is always recorded before it is read, once per graph.Gradient call.
// The identities copy a and b, and the link reads them once more: for an
// im2col matrix that is most of a convolution's memory traffic.
func linkedMatMul(a, b *graph.Node) *graph.Node {
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
