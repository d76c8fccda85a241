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

// Linear moves along fixed directions: φ_k^t(z) = z + t·a_k with unit a_k.
//
// As a learned method (Voynov & Babenko 2020) the direction matrix A [d, K]
// is either free, its columns normalised (option "orthonormal": false, the
// default), or the first K columns of exp(S − Sᵀ), an orthonormal matrix for
// any S (option "orthonormal": true). The closed-form peers (GANSpace, SeFa,
// InterFaceGAN) are Linear editors whose A was computed, not trained; their
// method name says where A came from.
type Linear struct {
	base
	fixed bool

	mu   sync.Mutex
	exec *context.Exec
	key  *tensors.Tensor // the weights dirs were computed from (see cached)
	dirs [][]float32
}

func init() {
	register("linear", func(k, d int, opt Options, ctx *context.Context, be backends.Backend) (Editor, error) {
		lo, err := Resolve("linear", opt, DefaultLinear())
		if err != nil {
			return nil, err
		}
		return newLinear("linear", k, d, opt, lo.Orthonormal, ctx, be, false), nil
	})
	for _, m := range []string{"ganspace", "sefa", "interfacegan"} {
		register(m, func(k, d int, opt Options, ctx *context.Context, be backends.Backend) (Editor, error) {
			if ctx.GetVariableByScopeAndName(Scope+"/linear", "A") == nil {
				return nil, fmt.Errorf("edit: %s directions are fitted by their own constructor (edit.New%s), not created empty", m, m)
			}
			return newLinear(m, k, d, opt, false, ctx, be, true), nil
		})
	}
}

// newLinear makes a linear editor; fitted (fixed) ones keep their fit's
// facts in opt and are never orthonormal.
func newLinear(method string, k, d int, opt Options, orthonormal bool, ctx *context.Context, be backends.Backend, fixed bool) *Linear {
	l := &Linear{base: newBase(method, k, d, opt, ctx, be), fixed: fixed}
	lctx := ctx.InAbsPath(Scope + "/linear")
	if orthonormal && !fixed {
		lctx.WithInitializer(initializers.RandomNormalFn(ctx, 0.1)).VariableWithShape("S", shapes.Make(dtypes.Float32, d, d))
	} else {
		v := lctx.WithInitializer(initializers.RandomNormalFn(ctx, 1)).VariableWithShape("A", shapes.Make(dtypes.Float32, d, k))
		v.SetTrainable(!fixed)
	}
	return l
}

// NewFixed makes a Linear editor of the given method from computed
// directions (each of length d; normalised here).
func NewFixed(method string, dirs [][]float32, params Options, be backends.Backend) (*Linear, error) {
	if len(dirs) == 0 {
		return nil, fmt.Errorf("edit: %s: no directions", method)
	}
	d, k := len(dirs[0]), len(dirs)
	a := make([]float32, d*k)
	for j, v := range dirs {
		if len(v) != d {
			return nil, fmt.Errorf("edit: %s: direction %d has %d values, want %d", method, j, len(v), d)
		}
		n := 0.0
		for _, x := range v {
			n += float64(x) * float64(x)
		}
		n = math.Sqrt(n)
		if n == 0 || math.IsNaN(n) || math.IsInf(n, 0) {
			return nil, fmt.Errorf("edit: %s: direction %d has norm %v", method, j, n)
		}
		for i, x := range v {
			a[i*k+j] = float32(float64(x) / n)
		}
	}
	ctx := context.New().Checked(false)
	ctx.InAbsPath(Scope+"/linear").VariableWithValue("A", tensors.FromFlatDataAndDimensions(a, d, k)).SetTrainable(false)
	e, err := New(method, k, d, params, ctx, be)
	if err != nil {
		return nil, err
	}
	return e.(*Linear), nil
}

// directions is the unit direction matrix D [d, K] in g.
func (l *Linear) directions(ctx *context.Context, g *graph.Graph) *graph.Node {
	lctx := ctx.InAbsPath(Scope + "/linear")
	if v := lctx.GetVariableByScopeAndName(Scope+"/linear", "S"); v != nil {
		s := v.ValueGraph(g)
		skew := graph.Sub(s, graph.Transpose(s, 0, 1))
		return graph.Slice(expm(skew), graph.AxisRange(), graph.AxisRange(0, l.k))
	}
	a := lctx.GetVariableByScopeAndName(Scope+"/linear", "A").ValueGraph(g)
	norm := graph.Sqrt(graph.AddScalar(graph.ReduceSum(graph.Square(a), 0), 1e-12))
	return graph.Div(a, graph.ExpandAxes(norm, 0))
}

// expm is the matrix exponential by scaling and squaring: exp(X) =
// (Σ_{i≤12} (X/2⁶)ⁱ/i!)^(2⁶). For skew-symmetric X with entries of order one
// (what training produces) the truncation error is far below float32 precision.
func expm(x *graph.Node) *graph.Node {
	const squarings, terms = 6, 12
	n := x.Shape().Dimensions[0]
	x = graph.DivScalar(x, math.Pow(2, squarings))
	eye := graph.DiagonalWithValue(graph.Scalar(x.Graph(), x.DType(), 1.0), n)
	sum, term := eye, eye
	for i := 1; i <= terms; i++ {
		term = graph.DivScalar(engine.MatMul(term, x), float64(i))
		sum = graph.Add(sum, term)
	}
	for i := 0; i < squarings; i++ {
		sum = engine.MatMul(sum, sum)
	}
	return sum
}

// Shift implements Trainable: z + ε·(onehot·Dᵀ).
func (l *Linear) Shift(ctx *context.Context, z, onehot, eps *graph.Node) (*graph.Node, *graph.Node) {
	d := l.directions(ctx, z.Graph())
	move := engine.MatMul(onehot, graph.Transpose(d, 0, 1)) // [B, d]
	return graph.Add(z, graph.Mul(move, graph.ExpandAxes(eps, -1))), nil
}

// EpsRange is the GANLatentDiscovery default: |ε| ~ U[0.5, 6].
func (l *Linear) EpsRange() (float64, float64) { return 0.5, 6 }

// Directions returns a copy of the K unit directions.
func (l *Linear) Directions() ([][]float32, error) {
	dirs, err := l.cached()
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(dirs))
	for j, v := range dirs {
		out[j] = append([]float32(nil), v...)
	}
	return out, nil
}

// cached returns the directions, computed once per value of the weights:
// the orthonormal form costs 18 d×d matmuls, too many for every edit. The
// cache is keyed on the weight variable's tensor, which every change
// replaces (a training step's update, a checkpoint load, SetValue), so an
// editor trained by discover edits with its current weights; holding the
// old tensor keeps its address from being reused. Callers must not modify
// the result.
func (l *Linear) cached() ([][]float32, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.key != nil && l.key == l.weights() {
		return l.dirs, nil
	}
	if l.exec == nil {
		exec, err := context.NewExec(l.be, l.ctx, func(ctx *context.Context, g *graph.Graph) *graph.Node {
			return l.directions(ctx, g)
		})
		if err != nil {
			return nil, err
		}
		l.exec = exec
	}
	var flat []float32
	err := engine.Safe("edit: linear directions", func() error {
		out, err := l.exec.Exec()
		if err != nil {
			return err
		}
		flat = tensors.MustCopyFlatData[float32](out[0])
		return nil
	})
	if err != nil {
		return nil, err
	}
	dirs := make([][]float32, l.k)
	for j := range dirs {
		dirs[j] = make([]float32, l.d)
		for i := range dirs[j] {
			dirs[j][i] = flat[i*l.k+j]
		}
	}
	// Read after the execution, which initialises a fresh editor's weights.
	l.key, l.dirs = l.weights(), dirs
	return dirs, nil
}

// weights is the tensor holding the direction weights (S or A), nil while
// they have no value.
func (l *Linear) weights() *tensors.Tensor {
	v := l.ctx.GetVariableByScopeAndName(Scope+"/linear", "S")
	if v == nil {
		v = l.ctx.GetVariableByScopeAndName(Scope+"/linear", "A")
	}
	if v == nil || !v.HasValue() {
		return nil
	}
	t, err := v.Value()
	if err != nil {
		return nil
	}
	return t
}

// EditBatch implements Editor: z_i + t_i·a_{k_i}, on the host.
func (l *Linear) EditBatch(zs [][]float32, steps []Step) ([][]float32, error) {
	if err := checkBatch(l, zs, steps); err != nil {
		return nil, err
	}
	dirs, err := l.cached()
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(zs))
	for r, z := range zs {
		a, t := dirs[steps[r].K], steps[r].T
		out[r] = make([]float32, len(z))
		for i := range z {
			out[r][i] = z[i] + t*a[i]
		}
	}
	return out, nil
}
