package engine

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// GradCheck compares the gradient of the scalar f(inputs) with respect to each
// input, as built by graph.Gradient, with central finite differences of step
// eps, all in float64. It returns, per input, the relative error
// ‖analytic − numeric‖ / max(‖analytic‖, ‖numeric‖, 1e-12).
//
// Every layer this project writes itself has a test that calls it: a layer is
// only as good as its gradient, and GoMLX shipped a wrong one (GOMLX-NOTES trap 1).
func GradCheck(backend backends.Backend, f func(inputs []*graph.Node) *graph.Node, inputs [][]float64, dims [][]int, eps float64) (relErr []float64, err error) {
	if len(inputs) != len(dims) {
		return nil, fmt.Errorf("gradcheck: %d inputs but %d shapes", len(inputs), len(dims))
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gradcheck: %v", r)
		}
	}()
	value, err := graph.NewExec(backend, func(xs []*graph.Node) *graph.Node { return f(xs) })
	if err != nil {
		return nil, err
	}
	grads, err := graph.NewExec(backend, func(xs []*graph.Node) []*graph.Node {
		y := f(xs)
		if y.Shape().Size() != 1 {
			panic(fmt.Sprintf("f must return a scalar, got %s", y.Shape()))
		}
		return graph.Gradient(graph.ReduceAllSum(y), xs...)
	})
	if err != nil {
		return nil, err
	}
	args := func(vals [][]float64) []any {
		a := make([]any, len(vals))
		for i, v := range vals {
			a[i] = tensors.FromFlatDataAndDimensions(append([]float64(nil), v...), dims[i]...)
		}
		return a
	}
	eval := func(vals [][]float64) (float64, error) {
		out, err := value.Exec(args(vals)...)
		if err != nil {
			return 0, err
		}
		return tensors.ToScalar[float64](out[0]), nil
	}
	analytic, err := grads.Exec(args(inputs)...)
	if err != nil {
		return nil, err
	}
	vals := make([][]float64, len(inputs))
	for i := range inputs {
		vals[i] = append([]float64(nil), inputs[i]...)
	}
	for i := range inputs {
		an := tensors.MustCopyFlatData[float64](analytic[i])
		var diff2, an2, nu2 float64
		for j := range vals[i] {
			orig := vals[i][j]
			vals[i][j] = orig + eps
			fp, err := eval(vals)
			if err != nil {
				return nil, err
			}
			vals[i][j] = orig - eps
			fm, err := eval(vals)
			if err != nil {
				return nil, err
			}
			vals[i][j] = orig
			num := (fp - fm) / (2 * eps)
			diff2 += (an[j] - num) * (an[j] - num)
			an2 += an[j] * an[j]
			nu2 += num * num
		}
		relErr = append(relErr, math.Sqrt(diff2)/math.Max(math.Max(math.Sqrt(an2), math.Sqrt(nu2)), 1e-12))
	}
	return relErr, nil
}
