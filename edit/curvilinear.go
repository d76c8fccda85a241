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
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"

	"latentedit/engine"
)

// Curvilinear edits along the coordinate axes of a learned latent space V
// (DeCurvEd, Aoshima & Matsubara 2023): an invertible f: Z → V with exact
// inverse, and φ_k^t(z) = f⁻¹(f(z) + t·e_k) with e_k the k-th standard basis
// vector of V (so K ≤ d). Edits commute by construction: a sequence adds all
// its shifts in V and maps back once per prefix (EditSequences).
//
// Options:
//   - "flow": "coupling" (default) or "ode".
//   - coupling: an affine-coupling flow of "layers" (default 4) layers with
//     alternating even/odd masks; each layer's log-scale s and shift t come
//     from an MLP d → "hidden" (default 128) → hidden → d, d with tanh
//     hidden units, s = "scale_max" (default 2)·tanh(raw). The s and t
//     output layers start at zero, so f starts as the identity.
//     Variables: Scope+"/curvilinear/layer<i>/{dense0,dense1,scale,shift}/{weights,biases}".
//   - ode: a neural ODE dz/dτ = g(z), g an MLP d → hidden → hidden → d with
//     tanh hidden units and a zero-initialised output layer, integrated with
//     fixed-step RK4 over τ ∈ [0, 1] ("ode_steps", default 8) forwards for f
//     and backwards for f⁻¹. f⁻¹ is the inverse of f up to RK4's error
//     (about 1e-6·‖z‖ for the weights the tests use), not exactly. The
//     log-det integrates the exact trace of g's Jacobian (closed form for the
//     two-layer MLP) with the same RK4 stages.
//     Variables: Scope+"/curvilinear/ode/{dense0,dense1,dense2}/{weights,biases}".
//
// Shift's penalty is the DeCurvEd regulariser mean_B (log|det ∂f/∂z|)².
type Curvilinear struct {
	base
	flow     string
	layers   int
	hidden   int
	scaleMax float64
	odeSteps int

	mu    sync.Mutex
	execs [3]*context.Exec // by curvExec
}

const curvScope = Scope + "/curvilinear"

func init() {
	register("curvilinear", func(k, d int, opt Options, ctx *context.Context, be backends.Backend) (Editor, error) {
		return newCurvilinear(k, d, opt, ctx, be)
	})
}

func newCurvilinear(k, d int, opt Options, ctx *context.Context, be backends.Backend) (*Curvilinear, error) {
	c := &Curvilinear{base: newBase("curvilinear", k, d, opt, ctx, be)}
	co, err := Resolve("curvilinear", opt, DefaultCurvilinear())
	if err != nil {
		return nil, err
	}
	if k > d {
		return nil, fmt.Errorf("edit: curvilinear: K = %d directions, but V has only d = %d axes", k, d)
	}
	c.flow, c.layers, c.hidden, c.scaleMax, c.odeSteps = co.Flow, co.Layers, co.Hidden, co.ScaleMax, co.ODESteps
	for _, v := range c.variables() {
		vctx := ctx.InAbsPath(v.scope)
		switch {
		case v.zero:
			vctx = vctx.WithInitializer(initializers.Zero)
		default:
			vctx = vctx.WithInitializer(initializers.RandomNormalFn(ctx, 1/math.Sqrt(float64(v.shape[0]))))
		}
		vctx.VariableWithShape(v.name, shapes.Make(dtypes.Float32, v.shape...))
	}
	return c, nil
}

type curvVar struct {
	scope, name string
	shape       []int
	zero        bool // initialised to zero (biases, output layers)
}

// variables lists the flow's variables in the order the flow functions take
// their weights.
func (c *Curvilinear) variables() []curvVar {
	d, h := c.d, c.hidden
	var vs []curvVar
	addDense := func(scope string, in, out int, zero bool) {
		vs = append(vs, curvVar{scope, "weights", []int{in, out}, zero}, curvVar{scope, "biases", []int{out}, true})
	}
	if c.flow == "ode" {
		addDense(curvScope+"/ode/dense0", d, h, false)
		addDense(curvScope+"/ode/dense1", h, h, false)
		addDense(curvScope+"/ode/dense2", h, d, true)
		return vs
	}
	for l := 0; l < c.layers; l++ {
		p := fmt.Sprintf("%s/layer%d/", curvScope, l)
		addDense(p+"dense0", d, h, false)
		addDense(p+"dense1", h, h, false)
		addDense(p+"scale", h, d, true)
		addDense(p+"shift", h, d, true)
	}
	return vs
}

// weights reads the flow's variables into g, in dtype dt.
func (c *Curvilinear) weights(ctx *context.Context, g *graph.Graph, dt dtypes.DType) []*graph.Node {
	var ws []*graph.Node
	for _, v := range c.variables() {
		vv := ctx.InAbsPath(v.scope).GetVariableByScopeAndName(v.scope, v.name)
		if vv == nil {
			panic(fmt.Sprintf("edit: curvilinear: variable %s/%s missing", v.scope, v.name))
		}
		ws = append(ws, graph.ConvertDType(vv.ValueGraph(g), dt))
	}
	return ws
}

// forward is f(z) and log|det ∂f/∂z| [B].
func (c *Curvilinear) forward(z *graph.Node, ws []*graph.Node) (*graph.Node, *graph.Node) {
	if c.flow == "ode" {
		return odeForward(z, ws, c.odeSteps)
	}
	return couplingForward(z, ws, c.layers, c.scaleMax)
}

// inverse is f⁻¹(v).
func (c *Curvilinear) inverse(v *graph.Node, ws []*graph.Node) *graph.Node {
	if c.flow == "ode" {
		return odeInverse(v, ws, c.odeSteps)
	}
	return couplingInverse(v, ws, c.layers, c.scaleMax)
}

// curvDense is x·w + b for x [B, in], w [in, out], b [out].
func curvDense(x, w, b *graph.Node) *graph.Node {
	return graph.Add(engine.MatMul(x, w), graph.ExpandAxes(b, 0))
}

// couplingMask is layer l's mask [1, d] in dtype dt: 1 on the coordinates the
// layer conditions on (keeps), 0 on those it transforms; even and odd
// coordinates alternate between layers.
func couplingMask(g *graph.Graph, dt dtypes.DType, d, l int) *graph.Node {
	m := make([]float64, d)
	for i := range m {
		if (i+l)%2 == 0 {
			m[i] = 1
		}
	}
	return graph.ConvertDType(graph.Const(g, [][]float64{m}), dt)
}

// couplingST is a layer's log-scale s and shift t [B, d], both zero on the
// kept coordinates, computed from the kept coordinates of x. ws are the
// layer's 8 weights (dense0, dense1, scale, shift; weights then biases).
func couplingST(x, mask *graph.Node, ws []*graph.Node, scaleMax float64) (s, t *graph.Node) {
	free := graph.OneMinus(mask)
	h := graph.Tanh(curvDense(graph.Mul(x, mask), ws[0], ws[1]))
	h = graph.Tanh(curvDense(h, ws[2], ws[3]))
	s = graph.Mul(graph.MulScalar(graph.Tanh(curvDense(h, ws[4], ws[5])), scaleMax), free)
	t = graph.Mul(curvDense(h, ws[6], ws[7]), free)
	return s, t
}

// couplingForward is the coupling flow y = f(x) [B, d] and its log-det [B]:
// per layer y = x⊙exp(s) + t.
func couplingForward(x *graph.Node, ws []*graph.Node, layers int, scaleMax float64) (*graph.Node, *graph.Node) {
	d := x.Shape().Dimensions[1]
	var logdet *graph.Node
	for l := 0; l < layers; l++ {
		s, t := couplingST(x, couplingMask(x.Graph(), x.DType(), d, l), ws[8*l:8*l+8], scaleMax)
		x = graph.Add(graph.Mul(x, graph.Exp(s)), t)
		ld := graph.ReduceSum(s, 1)
		if logdet == nil {
			logdet = ld
		} else {
			logdet = graph.Add(logdet, ld)
		}
	}
	return x, logdet
}

// couplingInverse is f⁻¹(y): per layer, last first, x = (y − t)⊙exp(−s), exact
// because s and t depend only on the kept coordinates, which y and x share.
func couplingInverse(y *graph.Node, ws []*graph.Node, layers int, scaleMax float64) *graph.Node {
	d := y.Shape().Dimensions[1]
	for l := layers - 1; l >= 0; l-- {
		s, t := couplingST(y, couplingMask(y.Graph(), y.DType(), d, l), ws[8*l:8*l+8], scaleMax)
		y = graph.Mul(graph.Sub(y, t), graph.Exp(graph.Neg(s)))
	}
	return y
}

// odeField is g(z) = tanh(tanh(z·W0 + b0)·W1 + b1)·W2 + b2 [B, d] and the
// exact trace of its Jacobian [B]:
//
//	tr ∂g/∂z = Σ_{a,c} D0[a]·D1[c]·W1[a,c]·(W2·W0)[c,a],
//
// with D0, D1 the tanh derivatives of the two hidden layers.
func odeField(z *graph.Node, ws []*graph.Node) (*graph.Node, *graph.Node) {
	h0 := graph.Tanh(curvDense(z, ws[0], ws[1]))
	h1 := graph.Tanh(curvDense(h0, ws[2], ws[3]))
	out := curvDense(h1, ws[4], ws[5])
	d0 := graph.OneMinus(graph.Square(h0))
	d1 := graph.OneMinus(graph.Square(h1))
	p := graph.Mul(ws[2], graph.Transpose(engine.MatMul(ws[4], ws[0]), 0, 1)) // [H, H]
	trace := graph.ReduceSum(graph.Mul(engine.MatMul(d0, p), d1), 1)
	return out, trace
}

// odeForward integrates dz/dτ = g(z) over τ ∈ [0, 1] with steps RK4 steps,
// and d(log det)/dτ = tr ∂g/∂z with the same stages.
func odeForward(z *graph.Node, ws []*graph.Node, steps int) (*graph.Node, *graph.Node) {
	h := 1 / float64(steps)
	var logdet *graph.Node
	for range steps {
		k1, l1 := odeField(z, ws)
		k2, l2 := odeField(graph.Add(z, graph.MulScalar(k1, h/2)), ws)
		k3, l3 := odeField(graph.Add(z, graph.MulScalar(k2, h/2)), ws)
		k4, l4 := odeField(graph.Add(z, graph.MulScalar(k3, h)), ws)
		z = graph.Add(z, graph.MulScalar(rk4Sum(k1, k2, k3, k4), h/6))
		ld := graph.MulScalar(rk4Sum(l1, l2, l3, l4), h/6)
		if logdet == nil {
			logdet = ld
		} else {
			logdet = graph.Add(logdet, ld)
		}
	}
	return z, logdet
}

// odeInverse integrates the same ODE from τ = 1 back to 0.
func odeInverse(v *graph.Node, ws []*graph.Node, steps int) *graph.Node {
	h := -1 / float64(steps)
	for range steps {
		k1, _ := odeField(v, ws)
		k2, _ := odeField(graph.Add(v, graph.MulScalar(k1, h/2)), ws)
		k3, _ := odeField(graph.Add(v, graph.MulScalar(k2, h/2)), ws)
		k4, _ := odeField(graph.Add(v, graph.MulScalar(k3, h)), ws)
		v = graph.Add(v, graph.MulScalar(rk4Sum(k1, k2, k3, k4), h/6))
	}
	return v
}

func rk4Sum(k1, k2, k3, k4 *graph.Node) *graph.Node {
	return graph.Add(graph.Add(k1, k4), graph.MulScalar(graph.Add(k2, k3), 2))
}

// curvBasis is [K, d]: the first K standard basis vectors of V.
func curvBasis(g *graph.Graph, dt dtypes.DType, k, d int) *graph.Node {
	e := make([][]float64, k)
	for i := range e {
		e[i] = make([]float64, d)
		e[i][i] = 1
	}
	return graph.ConvertDType(graph.Const(g, e), dt)
}

// Shift implements Trainable: f⁻¹(f(z) + ε·e_k), penalty mean (log det)².
func (c *Curvilinear) Shift(ctx *context.Context, z, onehot, eps *graph.Node) (*graph.Node, *graph.Node) {
	g, dt := z.Graph(), z.DType()
	ws := c.weights(ctx, g, dt)
	v, logdet := c.forward(z, ws)
	amount := graph.Mul(graph.ConvertDType(onehot, dt), graph.ExpandAxes(graph.ConvertDType(eps, dt), -1)) // [B, K]
	v = graph.Add(v, engine.MatMul(amount, curvBasis(g, dt, c.k, c.d)))
	return c.inverse(v, ws), graph.ReduceAllMean(graph.Square(logdet))
}

// EpsRange is |ε| ~ U[0.5, 6], linear's range: f starts as the identity, so
// a curvilinear editor starts as a linear one along V's (= Z's) axes, and the
// log-det penalty keeps f volume-preserving, so V's units stay latent units.
func (c *Curvilinear) EpsRange() (float64, float64) { return 0.5, 6 }

// Flow is the flow kind, "coupling" or "ode".
func (c *Curvilinear) Flow() string { return c.flow }

// curvExec names the three graphs an editor runs: f, f⁻¹, and the edit
// f⁻¹(f(z) + δ) in one execution.
type curvExec int

const (
	curvForward curvExec = iota
	curvInverse
	curvEdit
)

// exec returns the executor of graph which, built on first use.
func (c *Curvilinear) exec(which curvExec) (*context.Exec, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.execs[which] != nil {
		return c.execs[which], nil
	}
	err := engine.Safe("edit: curvilinear", func() error {
		var e *context.Exec
		var err error
		switch which {
		case curvForward:
			e, err = context.NewExec(c.be, c.ctx, func(ctx *context.Context, z *graph.Node) *graph.Node {
				v, _ := c.forward(z, c.weights(ctx, z.Graph(), z.DType()))
				return v
			})
		case curvInverse:
			e, err = context.NewExec(c.be, c.ctx, func(ctx *context.Context, v *graph.Node) *graph.Node {
				return c.inverse(v, c.weights(ctx, v.Graph(), v.DType()))
			})
		default:
			e, err = context.NewExec(c.be, c.ctx, func(ctx *context.Context, z, delta *graph.Node) *graph.Node {
				ws := c.weights(ctx, z.Graph(), z.DType())
				v, _ := c.forward(z, ws)
				return c.inverse(graph.Add(v, delta), ws)
			})
		}
		c.execs[which] = e
		return err
	})
	return c.execs[which], err
}

// run executes graph which on rows (each of d values; with deltas, the
// edit's second input row by row) in padded chunks of editChunk.
func (c *Curvilinear) run(which curvExec, rows, deltas [][]float32) ([][]float32, error) {
	exec, err := c.exec(which)
	if err != nil {
		return nil, err
	}
	return chunks(rows, c.d, func(flat []float32, first int) ([]float32, error) {
		in := []any{tensors.FromFlatDataAndDimensions(flat, editChunk, c.d)}
		if deltas != nil {
			dl := make([]float32, editChunk*c.d)
			for i, v := range deltas[first:min(len(deltas), first+editChunk)] {
				copy(dl[i*c.d:], v)
			}
			in = append(in, tensors.FromFlatDataAndDimensions(dl, editChunk, c.d))
		}
		var out []float32
		err := engine.Safe("edit: curvilinear", func() error {
			res, err := exec.Exec(in...)
			if err != nil {
				return err
			}
			out = tensors.MustCopyFlatData[float32](res[0])
			return nil
		})
		return out, err
	})
}

// ToV is f(z): the point of V where edits are additions. The server fuses
// two characters there (a mix in V, mapped back once) for curvilinear editors.
func (c *Curvilinear) ToV(z []float32) ([]float32, error) {
	if err := checkLatent(c, z); err != nil {
		return nil, err
	}
	v, err := c.run(curvForward, [][]float32{z}, nil)
	if err != nil {
		return nil, err
	}
	return v[0], nil
}

// FromV is f⁻¹(v), the latent of a point of V.
func (c *Curvilinear) FromV(v []float32) ([]float32, error) {
	if len(v) != c.d {
		return nil, fmt.Errorf("edit: curvilinear: point of V has %d values, want %d", len(v), c.d)
	}
	z, err := c.run(curvInverse, [][]float32{v}, nil)
	if err != nil {
		return nil, err
	}
	if err := finiteInverse(z[0]); err != nil {
		return nil, err
	}
	return z[0], nil
}

// finiteInverse refuses a latent f⁻¹ mapped to NaN or ±Inf (a point of V
// far outside where the flow was trained).
func finiteInverse(z []float32) error {
	for i, x := range z {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("edit: curvilinear: f⁻¹ gave %v at coordinate %d", x, i)
		}
	}
	return nil
}

// shifted is f⁻¹(f(z_i) + δ_i) for every row, in one execution per chunk;
// a refusal names the row.
func (c *Curvilinear) shifted(zs, deltas [][]float32) ([][]float32, error) {
	out, err := c.run(curvEdit, zs, deltas)
	if err != nil {
		return nil, err
	}
	for i, z := range out {
		if err := finiteInverse(z); err != nil {
			if len(out) > 1 {
				return nil, fmt.Errorf("row %d: %w", i, err)
			}
			return nil, err
		}
	}
	return out, nil
}

// EditBatch implements Editor: f⁻¹(f(z_i) + t_i·e_{k_i}).
func (c *Curvilinear) EditBatch(zs [][]float32, steps []Step) ([][]float32, error) {
	if err := checkBatch(c, zs, steps); err != nil {
		return nil, err
	}
	deltas := make([][]float32, len(zs))
	for i, s := range steps {
		deltas[i] = make([]float32, c.d)
		deltas[i][s.K] = s.T
	}
	return c.shifted(zs, deltas)
}

// EditSequences implements Sequencer: each prefix of a sequence is one row
// f⁻¹(f(z) + Σ shifts), all rows of all latents in one batch, so the result
// after n steps does not depend on their order.
func (c *Curvilinear) EditSequences(zs [][]float32, seqs [][]Step) ([][][]float32, error) {
	if err := checkSequences(c, zs, seqs); err != nil {
		return nil, err
	}
	var rows, deltas [][]float32
	for i, seq := range seqs {
		sum := make([]float32, c.d)
		for _, s := range seq {
			sum[s.K] += s.T
			rows, deltas = append(rows, zs[i]), append(deltas, append([]float32(nil), sum...))
		}
	}
	flat, err := c.shifted(rows, deltas)
	if err != nil {
		return nil, err
	}
	out := make([][][]float32, len(zs))
	for i, seq := range seqs {
		out[i], flat = flat[:len(seq):len(seq)], flat[len(seq):]
	}
	return out, nil
}
