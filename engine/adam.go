package engine

import (
	"strings"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
)

// Adam is the Adam optimiser (Kingma & Ba) with bias correction. Its moments
// and step count are context variables under /optim/<Name>, so checkpoints
// carry them and a resumed run continues exactly.
//
// Why our own rather than GoMLX's optimizers: a GAN step updates two disjoint
// variable sets from two losses in one graph, and the stock optimiser owns one
// loss and every trainable variable.
type Adam struct {
	Name         string  // scope of the optimiser state, e.g. "g" or "d"
	LR           float64 // learning rate
	Beta1, Beta2 float64 // moment decay; 0 means the defaults 0.9 and 0.999
	Eps          float64 // 0 means 1e-8
	// Scale, when not nil, is a scalar node multiplying LR: the trainer's
	// learning-rate schedule (package train sets it before every step), so
	// one compiled step serves every rate of the run.
	Scale *graph.Node
}

// Variables returns the trainable variables in scope prefix (e.g.
// "/generator") or below it, in a stable order. "/generator" does not match
// "/generator_ema": scopes are compared as paths.
func Variables(ctx *context.Context, prefix string) []*context.Variable {
	var vs []*context.Variable
	for v := range ctx.IterVariables() {
		if v.Trainable && InScope(v.Scope(), prefix) {
			vs = append(vs, v)
		}
	}
	return vs
}

// Minimize adds to loss's graph the update of vars that lowers loss.
// It returns the gradient norm, useful for logging and for NaN checks.
func (o Adam) Minimize(ctx *context.Context, loss *graph.Node, vars []*context.Variable) *graph.Node {
	b1, b2, eps := o.Beta1, o.Beta2, o.Eps
	if b1 == 0 {
		b1 = 0.9
	}
	if b2 == 0 {
		b2 = 0.999
	}
	if eps == 0 {
		eps = 1e-8
	}
	g := loss.Graph()
	nodes := make([]*graph.Node, len(vars))
	for i, v := range vars {
		nodes[i] = v.ValueGraph(g)
	}
	grads := graph.Gradient(loss, nodes...)
	octx := ctx.InAbsPath("/optim/" + o.Name).Checked(false).WithInitializer(initializers.Zero)
	stepVar := octx.VariableWithShape("step", shapes.Make(loss.DType())).SetTrainable(false)
	step := graph.OnePlus(stepVar.ValueGraph(g))
	stepVar.SetValueGraph(step)
	// Bias corrections 1-β^t, folded into the learning rate.
	c1 := graph.OneMinus(graph.Pow(graph.Scalar(g, loss.DType(), b1), step))
	c2 := graph.OneMinus(graph.Pow(graph.Scalar(g, loss.DType(), b2), step))
	lr := graph.MulScalar(graph.Div(graph.Sqrt(c2), c1), o.LR)
	if o.Scale != nil {
		lr = graph.Mul(lr, graph.ConvertDType(o.Scale, lr.DType()))
	}
	var norm2 *graph.Node
	for i, v := range vars {
		grad := grads[i]
		name := strings.ReplaceAll(strings.TrimPrefix(v.ScopeAndName(), "/"), "/", ".")
		mVar := octx.VariableWithShape(name+".m", v.Shape()).SetTrainable(false)
		vVar := octx.VariableWithShape(name+".v", v.Shape()).SetTrainable(false)
		m := graph.Add(graph.MulScalar(mVar.ValueGraph(g), b1), graph.MulScalar(grad, 1-b1))
		s := graph.Add(graph.MulScalar(vVar.ValueGraph(g), b2), graph.MulScalar(graph.Square(grad), 1-b2))
		mVar.SetValueGraph(m)
		vVar.SetValueGraph(s)
		upd := graph.Div(graph.Mul(m, lr), graph.AddScalar(graph.Sqrt(s), eps))
		v.SetValueGraph(graph.Sub(nodes[i], upd))
		sq := graph.ReduceAllSum(graph.Square(grad))
		if norm2 == nil {
			norm2 = sq
		} else {
			norm2 = graph.Add(norm2, sq)
		}
	}
	if norm2 == nil {
		return graph.ScalarZero(g, loss.DType())
	}
	return graph.Sqrt(norm2)
}

// InScope reports whether scope is prefix or a scope below it.
func InScope(scope, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return prefix == "" || scope == prefix || strings.HasPrefix(scope, prefix+"/")
}
