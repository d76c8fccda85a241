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
	return runRows(what, exec, n, chunk, pad, []Rows{{Data: in, Dims: dims}})
}

// Rows is one batch-major input of RunRows: n rows of shape Dims, flat.
type Rows struct {
	Data []float32
	Dims []int
}

// RowChunk is the rows per call of RunRows and LossGrad: small, since their
// callers (the region refinement) hold a handful of images at a time.
const RowChunk = 8

// RunRows is RunChunks for an executable of several batch-major inputs
// (rows, each n rows long) followed by inputs that are not split (fixed,
// passed as they are): every call holds exactly RowChunk rows, the last
// zero-padded, so a row's results never depend on how many share its call.
// Every output must be batch-major.
func RunRows(what string, exec *context.Exec, n int, rows []Rows, fixed ...any) ([][]float32, error) {
	return runRows(what, exec, n, RowChunk, true, rows, fixed...)
}

func runRows(what string, exec *context.Exec, n, chunk int, pad bool, rows []Rows, fixed ...any) ([][]float32, error) {
	sizes := make([]int, len(rows))
	for i, r := range rows {
		sizes[i] = 1
		for _, d := range r.Dims {
			sizes[i] *= d
		}
		if n < 1 || len(r.Data) != n*sizes[i] || chunk < 1 {
			return nil, fmt.Errorf("%s: %d values for %d items of %v (chunk %d)", what, len(r.Data), n, r.Dims, chunk)
		}
	}
	var outs [][]float32
	err := Safe(what, func() error {
		bufs := make([][]float32, len(rows))
		for s := 0; s < n; s += chunk {
			e := min(n, s+chunk)
			count := e - s
			if pad {
				count = chunk
			}
			args := make([]any, 0, len(rows)+len(fixed))
			for i, r := range rows {
				part := r.Data[s*sizes[i] : e*sizes[i]]
				if pad {
					if bufs[i] == nil {
						bufs[i] = make([]float32, chunk*sizes[i])
					}
					clear(bufs[i])
					copy(bufs[i], part)
					part = bufs[i]
				}
				args = append(args, tensors.FromFlatDataAndDimensions(part, append([]int{count}, r.Dims...)...))
			}
			res, err := exec.Exec(append(args, fixed...)...)
			if err != nil {
				return err
			}
			if outs == nil {
				outs = make([][]float32, len(res))
			}
			for i, r := range res {
				v := tensors.MustCopyFlatData[float32](r)
				r.FinalizeAll()
				per := len(v) / count
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
// gradient of their sum with respect to its first input, on n rows (RunRows:
// fixed padded chunks, so a row's loss and gradient do not depend on the
// others) and returns both on the host: what a judge gives an optimiser
// that runs on the host (pseudocase's region refinement).
func LossGrad(what string, exec *context.Exec, n int, rows []Rows, fixed ...any) (loss []float64, grad []float32, err error) {
	out, err := RunRows(what, exec, n, rows, fixed...)
	if err != nil {
		return nil, nil, err
	}
	loss = make([]float64, len(out[0]))
	for i, v := range out[0] {
		loss[i] = float64(v)
	}
	return loss, out[1], nil
}
