package evaluate

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
)

// Steer is how far n images (flat [n, H, W, C] in [-1, 1]) are from the
// factor levels targets[i] (image i's, in the oracle's factor order; NaN
// leaves a factor free), as the oracle reads them, and the gradient of that
// distance with respect to the pixels: per image, the mean over its
// targeted factors of the squared error in the oracle's normalised units
// (each factor's data spread), so a factor with a wide range does not
// outweigh a narrow one. An edit that descends it moves its picture towards
// the targets (pseudocase's region-constrained refinement). Cyclic factors
// (hues) cannot be targeted this way and are refused.
func (o *Oracle) Steer(pix []float32, n int, targets [][]float64) (loss []float64, grad []float32, err error) {
	sz := o.Size * o.Size * o.Chan
	if n < 1 || len(pix) != n*sz || len(targets) != n {
		return nil, nil, fmt.Errorf("oracle: %d values and %d target rows for %d images of %d", len(pix), len(targets), n, sz)
	}
	w := o.width()
	tgt, wt := make([]float32, n*w), make([]float32, n*w)
	for i, row := range targets {
		if len(row) != len(o.Factors) {
			return nil, nil, fmt.Errorf("oracle: image %d has %d targets for %d factors", i, len(row), len(o.Factors))
		}
		j, m := 0, 0
		for f, name := range o.Factors {
			v := row[f]
			switch {
			case cyclic[name] && !math.IsNaN(v):
				return nil, nil, fmt.Errorf("oracle: factor %s is a hue; it cannot be steered to a level", name)
			case cyclic[name]:
				j += 2
				continue
			case math.IsInf(v, 0):
				return nil, nil, fmt.Errorf("oracle: target of %s is %v", name, v)
			case !math.IsNaN(v):
				tgt[i*w+j], wt[i*w+j] = float32((v-o.Mean[j])/o.Std[j]), 1
				m++
			}
			j++
		}
		if m > 0 {
			for k := range w {
				wt[i*w+k] /= float32(m)
			}
		}
	}
	exec, err := o.steer.Get(func() (*context.Exec, error) {
		return context.NewExec(o.be, o.ctx, func(ctx *context.Context, x, tgt, wt *graph.Node) []*graph.Node {
			out := o.net(ctx.In("oracle").Reuse(), x)                                 // [B, W]
			l := graph.ReduceSum(graph.Mul(graph.Square(graph.Sub(out, tgt)), wt), 1) // [B]
			return []*graph.Node{l, graph.Gradient(graph.ReduceAllSum(l), x)[0]}
		})
	})
	if err != nil {
		return nil, nil, err
	}
	return engine.LossGrad("oracle steer", exec, n, []engine.Rows{{Data: pix, Dims: []int{o.Size, o.Size, o.Chan}},
		{Data: tgt, Dims: []int{w}}, {Data: wt, Dims: []int{w}}})
}
