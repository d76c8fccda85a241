package edit

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
)

// Warped moves along the gradient of a learned RBF field per direction
// (WarpedGANSpace, Tzelepis et al. 2021):
//
//	f_k(z) = Σ_i α_i exp(−γ_i‖z − s_i‖²),  ∇f_k(z) = Σ_i −2γ_i α_i (z − s_i) exp(−γ_i‖z − s_i‖²),
//
// summed over the 2N support vectors s_i of direction k: N dipoles, pairs
// initialised at ±s with weights α = +1 / −1 (fixed). The support vectors
// and log γ_i are trained. One step of size t is z + t·∇f/‖∇f‖; an edit is a
// path of such steps, each at most Options "step" long, the gradient
// recomputed at every point, so edits along different directions do not
// commute. Training (Shift) walks the same way (see Shift).
//
// Options: "dipoles" N (default 16, so 32 support vectors per direction),
// "gamma" the initial γ (default 1/d: ‖z − s‖² ≈ 2d for z, s ~ N(0, I), so
// each RBF starts at about e⁻² and no field is flat), "init_scale" the
// standard deviation of the initial support vectors (default 1, the latent
// prior's), "step" the longest sub-step of an edit (default 0.5),
// "train_substeps" the most sub-steps of a training move (default ⌈6/step⌉
// = 12, so training moves up to |ε| = 6 are EditBatch's paths; 1 is the paper's
// single step).
//
// Variables (in Scope+"/warped"): "support" [K, 2N, d], "log_gamma" [K, 2N].
type Warped struct {
	base
	dipoles    int
	step       float64
	trainSteps int

	paths pathEditor // the edit graph
}

func init() {
	register("warped", func(k, d int, opt Options, ctx *context.Context, be backends.Backend) (Editor, error) {
		return newWarped(k, d, opt, ctx, be)
	})
}

const warpedScope = Scope + "/warped"

func newWarped(k, d int, opt Options, ctx *context.Context, be backends.Backend) (*Warped, error) {
	w := &Warped{base: newBase("warped", k, d, opt, ctx, be)}
	wo, err := Resolve("warped", opt, DefaultWarped())
	if err != nil {
		return nil, err
	}
	gamma := wo.Gamma
	if gamma == 0 {
		gamma = 1 / float64(d)
	}
	w.dipoles, w.step, w.trainSteps = wo.Dipoles, wo.Step, wo.TrainSubsteps
	if w.trainSteps == 0 {
		w.trainSteps = int(math.Ceil(warpedEpsMax / w.step))
	}
	if w.trainSteps > 1000 {
		return nil, fmt.Errorf("edit: warped: option step = %v needs %d training sub-steps, over 1000", w.step, w.trainSteps)
	}
	scale := wo.InitScale
	m := 2 * w.dipoles
	wctx := ctx.InAbsPath(warpedScope)
	// Dipoles: the first N support vectors are random, the last N their negatives.
	wctx.WithInitializer(func(g *graph.Graph, shape shapes.Shape) *graph.Node {
		half := shapes.Make(shape.DType, k, w.dipoles, d)
		x := graph.MulScalar(ctx.RandomNormal(g, half), scale)
		return graph.Concatenate([]*graph.Node{x, graph.Neg(x)}, 1)
	}).VariableWithShape("support", shapes.Make(dtypes.Float32, k, m, d))
	logGamma := math.Log(gamma)
	wctx.WithInitializer(func(g *graph.Graph, shape shapes.Shape) *graph.Node {
		return graph.BroadcastToShape(graph.Scalar(g, shape.DType, logGamma), shape)
	}).VariableWithShape("log_gamma", shapes.Make(dtypes.Float32, k, m))
	return w, nil
}

// Dipoles is N: each direction has 2N support vectors.
func (w *Warped) Dipoles() int { return w.dipoles }

// warpedAlpha is α [2N] in dtype dt: +1 for the first N support vectors, −1 for the rest.
func warpedAlpha(g *graph.Graph, dt dtypes.DType, m int) *graph.Node {
	a := make([]float64, m)
	for i := range a {
		a[i] = 1
		if i >= m/2 {
			a[i] = -1
		}
	}
	return graph.ConvertDType(graph.Const(g, a), dt)
}

// warpedGradient is ∇f(z) [B, d] for z [B, d], each row with its own support
// set sv [B, M, d], log γ [B, M] and the weights alpha [M].
func warpedGradient(z, sv, logGamma, alpha *graph.Node) *graph.Node {
	diff := graph.Sub(graph.ExpandAxes(z, 1), sv) // [B, M, d]
	sq := graph.ReduceSum(graph.Square(diff), -1) // [B, M]
	gamma := graph.Exp(logGamma)                  // [B, M]
	w := graph.Mul(graph.Mul(gamma, graph.Exp(graph.Neg(graph.Mul(gamma, sq)))), graph.ExpandAxes(alpha, 0))
	return graph.MulScalar(graph.ReduceSum(graph.Mul(graph.ExpandAxes(w, -1), diff), 1), -2) // [B, d]
}

// warpedStep is one step z + eps·∇f/‖∇f‖ (z [B, d], eps [B]). The norm is
// √(‖∇f‖² + 1e-16), finite with a finite gradient even where ∇f = 0.
func warpedStep(z, sv, logGamma, alpha, eps *graph.Node) *graph.Node {
	grad := warpedGradient(z, sv, logGamma, alpha)
	norm := graph.Sqrt(graph.AddScalar(graph.ReduceSum(graph.Square(grad), -1), 1e-16)) // [B]
	return graph.Add(z, graph.Mul(grad, graph.ExpandAxes(graph.Div(eps, norm), -1)))
}

// warpedSelect gives each row b the support set [B, M, d], log γ [B, M] of
// the direction onehot[b] selects from support [K, M, d] and logGamma
// [K, M], and the weights α [M]. Selecting with a one-hot matmul is a
// gather with a plain gradient.
func warpedSelect(onehot, support, logGamma *graph.Node) (sv, lg, alpha *graph.Node) {
	dims := support.Shape().Dimensions
	k, m, d := dims[0], dims[1], dims[2]
	b := onehot.Shape().Dimensions[0]
	sv = graph.Reshape(engine.MatMul(onehot, graph.Reshape(support, k, m*d)), b, m, d)
	return sv, engine.MatMul(onehot, logGamma), warpedAlpha(onehot.Graph(), onehot.DType(), m)
}

// warpedShift is one step for a batch, each row b along the field of the
// direction onehot[b] selects: z [B, d], onehot [B, K], support [K, M, d],
// logGamma [K, M], eps [B].
func warpedShift(z, onehot, support, logGamma, eps *graph.Node) *graph.Node {
	sv, lg, alpha := warpedSelect(onehot, support, logGamma)
	return warpedStep(z, sv, lg, alpha, eps)
}

// warpedWalk walks each row of z [B, d] along its direction's field
// (onehot [B, K] selects it from support [K, M, d] and logGamma [K, M]):
// n[b] sub-steps of size h[b] (n, h [B]; n a count held as a number). The
// graph unrolls `unrolled` sub-steps, and a row takes the first n[b] of
// them; the rest are zero-length, so the result of a row that needs at most
// `unrolled` sub-steps does not depend on `unrolled`. Training (Shift) and
// editing (EditBatch) both walk through it: the field has this one
// implementation.
func warpedWalk(z, onehot, support, logGamma, h, n *graph.Node, unrolled int) *graph.Node {
	g, dt := z.Graph(), z.DType()
	sv, lg, alpha := warpedSelect(onehot, support, logGamma)
	for j := range unrolled {
		active := graph.ConvertDType(graph.GreaterThan(n, graph.Scalar(g, dt, float64(j))), dt)
		z = warpedStep(z, sv, lg, alpha, graph.Mul(h, active))
	}
	return z
}

// fieldGraph reads the support vectors and log γ into g, in dtype dt.
func (w *Warped) fieldGraph(ctx *context.Context, g *graph.Graph, dt dtypes.DType) (support, logGamma *graph.Node) {
	wctx := ctx.InAbsPath(warpedScope)
	sv := wctx.GetVariableByScopeAndName(warpedScope, "support")
	lg := wctx.GetVariableByScopeAndName(warpedScope, "log_gamma")
	if sv == nil || lg == nil {
		panic(fmt.Sprintf("edit: warped: variables %s/support and log_gamma missing", warpedScope))
	}
	return graph.ConvertDType(sv.ValueGraph(g), dt), graph.ConvertDType(lg.ValueGraph(g), dt)
}

// Shift implements Trainable: ε along direction k's field, walked as EditBatch
// walks it: ⌈|ε|/step⌉ equal sub-steps (at most Options "train_substeps",
// default ⌈6/step⌉ = 12, beyond which the sub-steps grow), so that training
// moves are exactly the edits EditBatch makes. The graph unrolls
// train_substeps steps; a row needing fewer takes zero-length steps for the
// rest. With train_substeps 1 it is the paper's single step
// z + ε·∇f/‖∇f‖, which on a fresh editor lands 0.55·|ε| from the walked
// path at |ε| = 6 (0.28·|ε| at 3, 0.06·|ε| at 1): the fields bend over a
// few latent units.
func (w *Warped) Shift(ctx *context.Context, z, onehot, eps *graph.Node) (*graph.Node, *graph.Node) {
	dt := z.DType()
	sv, lg := w.fieldGraph(ctx, z.Graph(), dt)
	oh, eps := graph.ConvertDType(onehot, dt), graph.ConvertDType(eps, dt)
	if w.trainSteps == 1 {
		return warpedShift(z, oh, sv, lg, eps), nil
	}
	// Sub-steps per row, n ∈ [1, train_substeps] (a constant of the data, no gradient).
	n := graph.StopGradient(graph.ClipScalar(graph.Ceil(graph.DivScalar(graph.Abs(eps), w.step)), 1, float64(w.trainSteps)))
	return warpedWalk(z, oh, sv, lg, graph.Div(eps, n), n, w.trainSteps), nil
}

// EpsRange is |ε| ~ U[0.5, 6], linear's range: the move is a unit vector
// times ε, so ε is in latent units as linear's is (‖z‖ ≈ 8 for d = 64), and
// Shift walks EditBatch's path in sub-steps, so a large ε trains the very edit EditBatch
// makes. Measured on the embedded mnist-gan, K = 4, 60 steps of batch 16
// (the discover smoke configuration, one run each): RCA 0.50 with the
// defaults, 0.55 with 12 equal sub-steps, 0.51 with single steps, and 0.23
// (chance 0.25) with [0.5, 3] and single steps.
func (w *Warped) EpsRange() (float64, float64) { return 0.5, warpedEpsMax }

// warpedEpsMax is EpsRange's upper end.
const warpedEpsMax = 6

// editUnrolled is how many sub-steps the edit graph unrolls: ⌈6/step⌉
// (12 by default, the whole of any edit up to |t| = 6), at most 64; a
// longer edit runs the graph again from where it stopped.
func (w *Warped) editUnrolled() int {
	return min(64, max(1, int(math.Ceil(warpedEpsMax/w.step))))
}

// EditBatch implements Editor: each row a path of ⌈|t|/step⌉ equal
// sub-steps (each at most Options "step" long) along its direction's field,
// the gradient recomputed at every point. Rows run in padded chunks of
// editChunk, one execution per chunk for edits up to |t| = 6 by default
// (longer ones run the graph again from where it stopped). It walks in
// float64, training in float32 (see pathEditor): the same path, but an edit
// no longer amplifies float32 rounding near a critical point of the field,
// so an exported editor applied in PyTorch gives the same latents.
func (w *Warped) EditBatch(zs [][]float32, steps []Step) ([][]float32, error) {
	return w.paths.edit(&w.base, w, zs, steps, w.step, w.editUnrolled(), w.editWalk)
}

// editWalk is the edit graph (see pathEditor), in z's dtype.
func (w *Warped) editWalk(ctx *context.Context, z, onehot, h, n, _ *graph.Node) *graph.Node {
	sv, lg := w.fieldGraph(ctx, z.Graph(), z.DType())
	return warpedWalk(z, onehot, sv, lg, h, n, w.editUnrolled())
}
