package engine

import (
	"fmt"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// RunChunks runs exec over n items (in: flat, each item of shape dims),
// chunk items per call, and returns each float32 output's values
// concatenated over the items. Chunks bound the memory of one call (a large
// batch of images needs gigabytes of convolution buffers) while keeping
// calls large enough to use every core.
//
// With pad, every call holds exactly chunk items (the last one zero-padded,
// the padding's outputs dropped), so an item's result never depends on how
// many others share its call: what makes readings reproducible one image at
// a time and sharded runs equal to whole ones. Without pad the last call is
// shorter (one executable more).
func RunChunks(what string, exec *context.Exec, in []float32, n int, dims []int, chunk int, pad bool) ([][]float32, error) {
	sz := 1
	for _, d := range dims {
		sz *= d
	}
	if n < 1 || len(in) != n*sz || chunk < 1 {
		return nil, fmt.Errorf("%s: %d values for %d items of %v (chunk %d)", what, len(in), n, dims, chunk)
	}
	var outs [][]float32
	err := Safe(what, func() error {
		var buf []float32
		if pad {
			buf = make([]float32, chunk*sz)
		}
		for s := 0; s < n; s += chunk {
			e := min(n, s+chunk)
			rows, part := e-s, in[s*sz:e*sz]
			if pad {
				clear(buf)
				copy(buf, part)
				rows, part = chunk, buf
			}
			res, err := exec.Exec(tensors.FromFlatDataAndDimensions(part, append([]int{rows}, dims...)...))
			if err != nil {
				return err
			}
			if outs == nil {
				outs = make([][]float32, len(res))
			}
			for i, r := range res {
				v := tensors.MustCopyFlatData[float32](r)
				r.FinalizeAll()
				per := len(v) / rows
				outs[i] = append(outs[i], v[:(e-s)*per]...)
			}
		}
		return nil
	})
	return outs, err
}

// LazyExec builds an executable on first use, once, safely from many
// goroutines: loaded models and judges compile their graphs only when a
// caller needs them.
type LazyExec struct {
	once sync.Once
	exec *context.Exec
	err  error
}

// Get returns the executable, building it with build on the first call.
func (l *LazyExec) Get(build func() (*context.Exec, error)) (*context.Exec, error) {
	l.once.Do(func() { l.exec, l.err = build() })
	return l.exec, l.err
}

// LossGrad runs exec, a graph that returns a per-row loss [B] and the
// gradient of their sum with respect to one input, on the inputs, and
// returns both on the host: what a judge gives an optimiser that runs on
// the host (pseudocase's region refinement).
func LossGrad(what string, exec *context.Exec, inputs ...any) (loss []float64, grad []float32, err error) {
	err = Safe(what, func() error {
		out, err := exec.Exec(inputs...)
		if err != nil {
			return err
		}
		l := tensors.MustCopyFlatData[float32](out[0])
		loss = make([]float64, len(l))
		for i, v := range l {
			loss[i] = float64(v)
		}
		grad = tensors.MustCopyFlatData[float32](out[1])
		return nil
	})
	return loss, grad, err
}
