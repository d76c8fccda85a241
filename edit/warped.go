package edit

import (
	"fmt"
	"math"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
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
// = 12, so training moves up to |ε| = 6 are Edit's paths; 1 is the paper's
// single step).
//
// Variables (in Scope+"/warped"): "support" [K, 2N, d], "log_gamma" [K, 2N].
type Warped struct {
	base
	dipoles    int
	step       float64
	trainSteps int
	mu         sync.Mutex
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

// warpedShift is one step for a batch, each row b along the field of the
// direction onehot[b] selects: z [B, d], onehot [B, K], support [K, M, d],
// logGamma [K, M], eps [B]. Selecting with a one-hot matmul is a gather with
// a plain gradient.
func warpedShift(z, onehot, support, logGamma, eps *graph.Node) *graph.Node {
	dims := support.Shape().Dimensions
	k, m, d := dims[0], dims[1], dims[2]
	b := z.Shape().Dimensions[0]
	svb := graph.Reshape(engine.MatMul(onehot, graph.Reshape(support, k, m*d)), b, m, d)
	lgb := engine.MatMul(onehot, logGamma)
	return warpedStep(z, svb, lgb, warpedAlpha(z.Graph(), z.DType(), m), eps)
}

// Shift implements Trainable: ε along direction k's field, walked as Edit
// walks it: ⌈|ε|/step⌉ equal sub-steps (at most Options "train_substeps",
// default ⌈6/step⌉ = 12, beyond which the sub-steps grow), so that training
// moves are exactly the edits Edit makes. The graph unrolls train_substeps
// steps; a row needing fewer takes zero-length steps for the rest. With
// train_substeps 1 it is the paper's single step z + ε·∇f/‖∇f‖, which on a
// fresh editor lands 0.55·|ε| from the walked path at |ε| = 6 (0.28·|ε| at 3,
// 0.06·|ε| at 1): the fields bend over a few latent units.
func (w *Warped) Shift(ctx *context.Context, z, onehot, eps *graph.Node) (*graph.Node, *graph.Node) {
	g, dt := z.Graph(), z.DType()
	wctx := ctx.InAbsPath(warpedScope)
	sv := wctx.GetVariableByScopeAndName(warpedScope, "support").ValueGraph(g)
	lg := wctx.GetVariableByScopeAndName(warpedScope, "log_gamma").ValueGraph(g)
	conv := func(x *graph.Node) *graph.Node { return graph.ConvertDType(x, dt) }
	oh, sv, lg, eps := conv(onehot), conv(sv), conv(lg), conv(eps)
	if w.trainSteps == 1 {
		return warpedShift(z, oh, sv, lg, eps), nil
	}
	// Sub-steps per row, n ∈ [1, train_substeps] (a constant of the data, no gradient).
	n := graph.StopGradient(graph.ClipScalar(graph.Ceil(graph.DivScalar(graph.Abs(eps), w.step)), 1, float64(w.trainSteps)))
	h := graph.Div(eps, n)
	for j := range w.trainSteps {
		active := graph.ConvertDType(graph.GreaterThan(n, graph.Scalar(g, dt, float64(j))), dt)
		z = warpedShift(z, oh, sv, lg, graph.Mul(h, active))
	}
	return z, nil
}

// EpsRange is |ε| ~ U[0.5, 6], linear's range: the move is a unit vector
// times ε, so ε is in latent units as linear's is (‖z‖ ≈ 8 for d = 64), and
// Shift walks Edit's path in sub-steps, so a large ε trains the edit Edit
// makes. Measured on the embedded mnist-gan, K = 4, 60 steps of batch 16
// (the discover smoke configuration, one run each): RCA 0.50 with the
// defaults, 0.55 with 12 equal sub-steps, 0.51 with single steps, and 0.23
// (chance 0.25) with [0.5, 3] and single steps.
func (w *Warped) EpsRange() (float64, float64) { return 0.5, warpedEpsMax }

// warpedEpsMax is EpsRange's upper end.
const warpedEpsMax = 6

// field returns the current support vectors [K][2N·d] and γ [K][2N] in float64.
func (w *Warped) field() (sv, gamma [][]float64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	err = engine.Safe("edit: warped", func() error {
		if w.ctx.NeedsInitialization() {
			if err := w.ctx.InitializeVariables(w.be, nil); err != nil {
				return err
			}
		}
		read := func(name string, per int) ([][]float64, error) {
			v := w.ctx.GetVariableByScopeAndName(warpedScope, name)
			if v == nil {
				return nil, fmt.Errorf("variable %s/%s missing", warpedScope, name)
			}
			t, err := v.Value()
			if err != nil {
				return nil, err
			}
			flat := tensors.MustCopyFlatData[float32](t)
			if len(flat) != w.k*per {
				return nil, fmt.Errorf("variable %s/%s has shape %s, want %d×%d values", warpedScope, name, t.Shape(), w.k, per)
			}
			out := make([][]float64, w.k)
			for j := range out {
				out[j] = make([]float64, per)
				for i := range out[j] {
					out[j][i] = float64(flat[j*per+i])
				}
			}
			return out, nil
		}
		m := 2 * w.dipoles
		if sv, err = read("support", m*w.d); err != nil {
			return err
		}
		lg, err := read("log_gamma", m)
		if err != nil {
			return err
		}
		for _, row := range lg {
			for i, v := range row {
				row[i] = math.Exp(v)
			}
		}
		gamma = lg
		return nil
	})
	return sv, gamma, err
}

// walk moves z (in place) by t along the field (sv, gamma) of one direction
// in ⌈|t|/step⌉ equal sub-steps.
func (w *Warped) walk(z []float64, sv, gamma []float64, t float64) {
	n := int(math.Ceil(math.Abs(t) / w.step))
	if n == 0 {
		return
	}
	h := t / float64(n)
	d, m := w.d, len(gamma)
	grad := make([]float64, d)
	for range n {
		clear(grad)
		for i := 0; i < m; i++ {
			s := sv[i*d : (i+1)*d]
			sq := 0.0
			for j, x := range z {
				sq += (x - s[j]) * (x - s[j])
			}
			alpha := 1.0
			if i >= m/2 {
				alpha = -1
			}
			c := -2 * gamma[i] * alpha * math.Exp(-gamma[i]*sq)
			for j, x := range z {
				grad[j] += c * (x - s[j])
			}
		}
		norm := 0.0
		for _, g := range grad {
			norm += g * g
		}
		norm = math.Sqrt(norm + 1e-16)
		for j := range z {
			z[j] += h * grad[j] / norm
		}
	}
}

// Edit implements Editor: a path of sub-steps of at most Options "step".
func (w *Warped) Edit(z []float32, k int, t float32) ([]float32, error) {
	if err := checkLatent(w, z); err != nil {
		return nil, err
	}
	if err := checkStep(w, Step{k, t}); err != nil {
		return nil, err
	}
	sv, gamma, err := w.field()
	if err != nil {
		return nil, err
	}
	x := make([]float64, len(z))
	for i, v := range z {
		x[i] = float64(v)
	}
	w.walk(x, sv[k], gamma[k], float64(t))
	out := make([]float32, len(z))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out, nil
}
