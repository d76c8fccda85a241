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

// Potential moves latents along potential flows (Song et al., ICML 2023,
// "Latent Traversals in Generative Models as Potential Flows"; official code
// KingJamesSong/PDETraversal): direction k is a scalar potential u_k(z, τ)
// of the latent and of flow time τ, and a latent flows with velocity
// ∇_z u_k, so every traversal is the gradient flow of a potential and its
// velocity field is curl-free (its Jacobian, the Hessian of u_k, is
// symmetric). Training adds the paper's PDE constraint, the wave equation
//
//	∂²u_k/∂τ² − c_k²·Δ_z u_k = 0,
//
// as a mean squared residual at the (z, τ) points of the walked paths, with
// a learned wave speed c_k per direction (initial 1, as theirs).
//
// The potential is one hidden tanh layer per direction:
//
//	a = W_k z + p_k τ + b_k  [H],  u_k(z, τ) = Σ_j v_kj tanh(a_j),
//
// small enough that ∇_z u, ∂²u/∂τ² and the Laplacian Δ_z u are written in
// closed form (potentialField), each checked against finite differences in
// the tests; the parameters' gradients of them are GoMLX's ordinary
// first-order autodiff. The official MLP is two tanh layers with a
// sinusoidal time embedding through a GELU MLP and a tanh on the output;
// ours keeps τ linear in the pre-activation (smooth, so ∂²u/∂τ² is nonzero
// and the wave equation binds).
//
// Convention of an edit of amount t: integrate the flow from τ = 0 for |t|
// time units in n = ⌈|t|/Δt⌉ explicit Euler steps of size h = |t|/n,
//
//	z ← z + sign(t)·h·∇_z u_k(z, τ),  τ = 0, h, 2h, …
//
// so t > 0 ascends the potential and t < 0 descends it, both along the same
// clock τ (not backwards in time). t = 0 is the identity. The official code
// takes unit steps z ← z + ∇u(z, i) at integer times i; Δt = 1 is that.
//
// Options (PotentialOptions): "hidden" H (default 64), "step" Δt (default
// 0.5), "pde_weight" (1), "ic_weight" (0: the official initial condition
// ∇_z u(z, 0) = 0 would make the first Euler step of every edit vanish, so
// it is off unless asked for), "init_scale" (1), "timesteps" the most Euler
// steps a training move unrolls (0: ⌈6/Δt⌉).
//
// Variables (in Scope+"/potential"): "w" [K, H, d], "p" [K, H], "b" [K, H],
// "v" [K, H], "c" [K].
type Potential struct {
	base
	hidden     int
	step       float64
	pde, ic    float64
	trainSteps int

	paths pathEditor // the edit graph
}

func init() {
	register("potential", func(k, d int, opt Options, ctx *context.Context, be backends.Backend) (Editor, error) {
		return newPotential(k, d, opt, ctx, be)
	})
}

const potentialScope = Scope + "/potential"

// potentialEpsMax is EpsRange's upper end: flow time, as warped's range.
const potentialEpsMax = 6

func newPotential(k, d int, opt Options, ctx *context.Context, be backends.Backend) (*Potential, error) {
	po, err := Resolve("potential", opt, DefaultPotential())
	if err != nil {
		return nil, err
	}
	p := &Potential{base: newBase("potential", k, d, opt, ctx, be), hidden: po.Hidden, step: po.Step,
		pde: po.PDEWeight, ic: po.ICWeight, trainSteps: po.Timesteps}
	if p.trainSteps == 0 {
		p.trainSteps = int(math.Ceil(potentialEpsMax / p.step))
	}
	if p.trainSteps > 1000 {
		return nil, fmt.Errorf("edit: potential: option step = %v needs %d training steps, over 1000", p.step, p.trainSteps)
	}
	h := p.hidden
	pctx := ctx.InAbsPath(potentialScope)
	normal := func(std float64) func(g *graph.Graph, shape shapes.Shape) *graph.Node {
		return func(g *graph.Graph, shape shapes.Shape) *graph.Node {
			return graph.MulScalar(ctx.RandomNormal(g, shape), std)
		}
	}
	// a_j ~ N(0, 1) for z ~ N(0, I); the time weights move a by about 1
	// over the training range of τ; v so that ‖∇u‖ starts near 1.
	pctx.WithInitializer(normal(1/math.Sqrt(float64(d)))).VariableWithShape("w", shapes.Make(dtypes.Float32, k, h, d))
	pctx.WithInitializer(normal(1.0/potentialEpsMax)).VariableWithShape("p", shapes.Make(dtypes.Float32, k, h))
	pctx.WithInitializer(normal(0.1)).VariableWithShape("b", shapes.Make(dtypes.Float32, k, h))
	pctx.WithInitializer(normal(po.InitScale*math.Sqrt(2/float64(h)))).VariableWithShape("v", shapes.Make(dtypes.Float32, k, h))
	pctx.WithInitializer(func(g *graph.Graph, shape shapes.Shape) *graph.Node {
		return graph.OnesLike(graph.Zeros(g, shape))
	}).VariableWithShape("c", shapes.Make(dtypes.Float32, k))
	return p, nil
}

// potentialParams are one direction's potential per row: w [B, H, d],
// p, b, v [B, H], c [B].
type potentialParams struct{ w, p, b, v, c *graph.Node }

// potentialSelect gives each row the potential of the direction onehot [B, K]
// selects (a one-hot matmul: a gather with a plain gradient).
func potentialSelect(onehot *graph.Node, all potentialParams) potentialParams {
	dims := all.w.Shape().Dimensions
	k, h, d := dims[0], dims[1], dims[2]
	b := onehot.Shape().Dimensions[0]
	return potentialParams{
		w: graph.Reshape(engine.MatMul(onehot, graph.Reshape(all.w, k, h*d)), b, h, d),
		p: engine.MatMul(onehot, all.p), b: engine.MatMul(onehot, all.b), v: engine.MatMul(onehot, all.v),
		c: graph.Reshape(engine.MatMul(onehot, graph.ExpandAxes(all.c, -1)), b),
	}
}

// potentialField is, for each row of z [B, d] at time tau [B], the
// potential u [B], its gradient ∇_z u [B, d] and the wave residual
// ∂²u/∂τ² − c²·Δ_z u [B], in closed form: with a = Wz + pτ + b,
// s = 1 − tanh²(a) and s' = −2·tanh(a)·s,
//
//	∇_z u = Wᵀ(v ⊙ s),  ∂²u/∂τ² = Σ_j v_j s'_j p_j²,  Δ_z u = Σ_j v_j s'_j ‖W_j‖².
func potentialField(z, tau *graph.Node, q potentialParams) (u, grad, residual *graph.Node) {
	a := graph.Add(graph.ReduceSum(graph.Mul(q.w, graph.ExpandAxes(z, 1)), -1), // [B, H]
		graph.Add(graph.Mul(q.p, graph.ExpandAxes(tau, -1)), q.b))
	th := graph.Tanh(a)
	s := graph.OneMinus(graph.Square(th))                                              // [B, H]
	vs1 := graph.Mul(q.v, graph.MulScalar(graph.Mul(th, s), -2))                       // v ⊙ s' [B, H]
	u = graph.ReduceSum(graph.Mul(q.v, th), -1)                                        // [B]
	grad = graph.ReduceSum(graph.Mul(graph.ExpandAxes(graph.Mul(q.v, s), -1), q.w), 1) // [B, d]
	utt := graph.ReduceSum(graph.Mul(vs1, graph.Square(q.p)), -1)                      // [B]
	lap := graph.ReduceSum(graph.Mul(vs1, graph.ReduceSum(graph.Square(q.w), -1)), -1) // [B]
	residual = graph.Sub(utt, graph.Mul(graph.Square(q.c), lap))                       // [B]
	return u, grad, residual
}

// potentialWalk walks each row of z [B, d] along its direction's flow
// (q selected per row): n[b] Euler steps of signed size h[b] from time
// τ = done[b]·|h[b]| (n, done [B], counts held as numbers). The graph
// unrolls `unrolled` steps and a row takes the first n[b] of them; the rest
// are zero-length. It also returns the mean over rows of the mean squared
// wave residual at the points the row visited. Training (Shift) and
// editing (EditBatch) both walk through it.
func potentialWalk(z, h, n, done *graph.Node, q potentialParams, unrolled int) (out, meanResidual *graph.Node) {
	g, dt := z.Graph(), z.DType()
	dur := graph.Abs(h)
	sq := graph.ZerosLike(h) // Σ residual² over the active steps [B]
	for j := range unrolled {
		active := graph.ConvertDType(graph.GreaterThan(n, graph.Scalar(g, dt, float64(j))), dt)
		tau := graph.Mul(graph.AddScalar(done, float64(j)), dur)
		_, grad, res := potentialField(z, tau, q)
		z = graph.Add(z, graph.Mul(grad, graph.ExpandAxes(graph.Mul(h, active), -1)))
		sq = graph.Add(sq, graph.Mul(graph.Square(res), active))
	}
	return z, graph.ReduceAllMean(graph.Div(sq, graph.MaxScalar(n, 1)))
}

// params reads the potentials' variables into g, in dtype dt.
func (p *Potential) params(ctx *context.Context, g *graph.Graph, dt dtypes.DType) potentialParams {
	read := func(name string) *graph.Node {
		v := ctx.InAbsPath(potentialScope).GetVariableByScopeAndName(potentialScope, name)
		if v == nil {
			panic(fmt.Sprintf("edit: potential: variable %s/%s missing", potentialScope, name))
		}
		return graph.ConvertDType(v.ValueGraph(g), dt)
	}
	return potentialParams{w: read("w"), p: read("p"), b: read("b"), v: read("v"), c: read("c")}
}

// Shift implements Trainable: ε of flow time along direction k, walked as
// EditBatch walks it (⌈|ε|/Δt⌉ equal Euler steps, at most Options
// "timesteps", beyond which the steps grow). The penalty is
// pde_weight·(mean squared wave residual along the paths) +
// ic_weight·mean ‖∇_z u(z, 0)‖².
func (p *Potential) Shift(ctx *context.Context, z, onehot, eps *graph.Node) (*graph.Node, *graph.Node) {
	dt := z.DType()
	q := potentialSelect(graph.ConvertDType(onehot, dt), p.params(ctx, z.Graph(), dt))
	eps = graph.ConvertDType(eps, dt)
	n := graph.StopGradient(graph.ClipScalar(graph.Ceil(graph.DivScalar(graph.Abs(eps), p.step)), 1, float64(p.trainSteps)))
	out, res := potentialWalk(z, graph.Div(eps, n), n, graph.ZerosLike(n), q, p.trainSteps)
	penalty := graph.MulScalar(res, p.pde)
	if p.ic > 0 {
		_, g0, _ := potentialField(z, graph.ZerosLike(eps), q)
		penalty = graph.Add(penalty, graph.MulScalar(graph.ReduceAllMean(graph.ReduceSum(graph.Square(g0), -1)), p.ic))
	}
	return out, penalty
}

// EpsRange is flow time |ε| ~ U[0.5, 6], the range of the other learned
// methods (‖∇u‖ starts near 1, so ε starts near latent units).
func (p *Potential) EpsRange() (float64, float64) { return 0.5, potentialEpsMax }

// editUnrolled is how many Euler steps the edit graph unrolls: ⌈6/Δt⌉, at
// most 64; a longer edit runs the graph again from where it stopped.
func (p *Potential) editUnrolled() int {
	return min(64, max(1, int(math.Ceil(potentialEpsMax/p.step))))
}

// EditBatch implements Editor: each row the flow of its direction for flow
// time |t| (see Potential for the convention), in ⌈|t|/Δt⌉ Euler steps, in
// float64 (training walks in float32; see pathEditor); edits longer than the
// unrolled 6 time units run the graph again from where they stopped, the
// clock τ going on.
func (p *Potential) EditBatch(zs [][]float32, steps []Step) ([][]float32, error) {
	return p.paths.edit(&p.base, p, zs, steps, p.step, p.editUnrolled(), p.editWalk)
}

// editWalk is the edit graph (see pathEditor), in z's dtype.
func (p *Potential) editWalk(ctx *context.Context, z, onehot, h, n, done *graph.Node) *graph.Node {
	q := potentialSelect(onehot, p.params(ctx, z.Graph(), z.DType()))
	out, _ := potentialWalk(z, h, n, done, q, p.editUnrolled())
	return out
}
