package edit

import (
	"math"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
)

// walkBatch runs a path editor over zs in padded chunks of editChunk rows:
// row i's edit is n = ⌈|t|/step⌉ equal sub-steps of h = t/n (n, h computed in
// float64). The walk runs in float64 (pathEditor's graph): z is widened on
// entry, carried in float64 between runs of the graph and rounded to
// float32 once, at the end. run takes a chunk's z [editChunk·d], one-hot
// [editChunk·K], h, the sub-steps left n and the sub-steps done so far (each
// [editChunk]), walks at most `unrolled` sub-steps and returns the new z;
// walkBatch calls it again until every row is done. Warped and Potential
// edit through it.
func walkBatch(zs [][]float32, steps []Step, d, k int, step float64, unrolled int, run func(z, oh, h, n, done []float64) ([]float64, error)) ([][]float32, error) {
	return chunks(zs, d, func(z32 []float32, first int) ([]float32, error) {
		z := make([]float64, len(z32))
		for i, v := range z32 {
			z[i] = float64(v)
		}
		oh := make([]float64, editChunk*k)
		h, n, done := make([]float64, editChunk), make([]float64, editChunk), make([]float64, editChunk)
		var left float64
		for i, s := range steps[first:min(len(steps), first+editChunk)] {
			oh[i*k+s.K] = 1
			c := math.Ceil(math.Abs(float64(s.T)) / step)
			if c > 0 {
				h[i] = float64(s.T) / c
			}
			n[i] = c
			left = max(left, n[i])
		}
		u := float64(unrolled)
		for ; left > 0; left -= u {
			var err error
			if z, err = run(z, oh, h, n, done); err != nil {
				return nil, err
			}
			for i := range n {
				done[i] += min(n[i], u)
				n[i] = max(0, n[i]-u)
			}
		}
		for i, v := range z {
			z32[i] = float32(v)
		}
		return z32, nil
	})
}

// pathEditor is the edit graph of a path editor (Warped, Potential), built
// once: z [B, d], onehot [B, K], h, n, done [B] → the walked z, all float64.
//
// Edits walk in float64 while training walks in float32 (the editor's
// float32 variables are widened inside the graph: walk reads them in z's
// dtype). A walk that passes near a critical point of its field (∇f ≈ 0)
// divides by a small norm and so amplifies rounding: walked in float32, an
// exported warped editor applied in PyTorch (float64) missed latentedit's
// edit by more than 1e-5·‖z‖ on 7 of 40 random editors (up to 3.5e-4·‖z‖);
// walked in float64 the two differ by at most 4.3e-8·‖z‖, the rounding of
// the result to float32 (interop's TestExportMatchesPyTorch, docs/import.md).
// The price: float64 runs the pure-Go backend's generic kernels, so 32
// warped edits (K 8, d 64) take 15 ms instead of 2.8 ms (BenchmarkEditBatch).
type pathEditor struct {
	mu   sync.Mutex
	exec *context.Exec
}

// edit is a path editor's EditBatch: it checks the call, builds the graph
// of walk once, and runs it through walkBatch.
func (pe *pathEditor) edit(b *base, e Editor, zs [][]float32, steps []Step, step float64, unrolled int,
	walk func(ctx *context.Context, z, onehot, h, n, done *graph.Node) *graph.Node) ([][]float32, error) {
	if err := checkBatch(e, zs, steps); err != nil {
		return nil, err
	}
	what := "edit: " + b.method
	pe.mu.Lock()
	if pe.exec == nil {
		err := engine.Safe(what, func() error {
			var err error
			pe.exec, err = context.NewExec(b.be, b.ctx, walk)
			return err
		})
		if err != nil {
			pe.exec = nil
			pe.mu.Unlock()
			return nil, err
		}
	}
	exec := pe.exec
	pe.mu.Unlock()
	d, k := b.d, b.k
	return walkBatch(zs, steps, d, k, step, unrolled, func(z, oh, h, n, done []float64) ([]float64, error) {
		return execChunk(exec, what, d, k, z, oh, h, n, done)
	})
}

// execChunk runs an edit graph on one chunk: z [editChunk, d], the one-hot
// directions [editChunk, K] and per-row values [editChunk] each, in
// float64; it returns the graph's first output, flat.
func execChunk(exec *context.Exec, what string, d, k int, z, oh []float64, rows ...[]float64) ([]float64, error) {
	var res []float64
	err := engine.Safe(what, func() error {
		args := []any{tensors.FromFlatDataAndDimensions(z, editChunk, d), tensors.FromFlatDataAndDimensions(oh, editChunk, k)}
		for _, r := range rows {
			args = append(args, tensors.FromFlatDataAndDimensions(r, editChunk))
		}
		out, err := exec.Exec(args...)
		if err != nil {
			return err
		}
		res = tensors.MustCopyFlatData[float64](out[0])
		return nil
	})
	return res, err
}
