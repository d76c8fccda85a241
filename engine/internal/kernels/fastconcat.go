package kernels

import (
	"sync/atomic"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// Fast Concatenate (see simplego_hooks.go). simplego's Concatenate copies
// with memmove already, but on one core; our convolutions concatenate every
// kernel tap into the im2col matrix (the largest tensors of a training step)
// and zero-pad by concatenation, so the copies are split between GOMAXPROCS
// goroutines here.

var fastConcat struct {
	installed bool
	stock     simplegoExecutor
	on        atomic.Bool
	calls     atomic.Int64
}

func init() {
	stock, reason := replaceExecutors([]backends.OpType{backends.OpTypeConcatenate}, []simplegoExecutor{execFastConcat})
	if reason != "" {
		return
	}
	fastConcat.stock = stock[0]
	fastConcat.installed = true
	fastConcat.on.Store(true)
}

func execFastConcat(be *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	out, data := nodeShapeAndData(node)
	axis, ok := data.(int)
	if !fastConcat.on.Load() || !ok || out.DType != dtypes.Float32 || axis < 0 || axis >= out.Rank() {
		return fastConcat.stock(be, node, inputs, owned)
	}
	srcs := make([][]float32, len(inputs))
	rows := make([]int, len(inputs)) // elements of input i per outer index
	inner := 1
	for a := axis + 1; a < out.Rank(); a++ {
		inner *= out.Dimensions[a]
	}
	total := 0
	for i, in := range inputs {
		s, err := be.BufferShape(in)
		if err != nil || s.DType != dtypes.Float32 || s.Rank() != out.Rank() {
			return fastConcat.stock(be, node, inputs, owned)
		}
		f, err := be.BufferData(in)
		if err != nil {
			return nil, err
		}
		srcs[i], rows[i] = f.([]float32), s.Dimensions[axis]*inner
		total += rows[i]
	}
	if total != out.Dimensions[axis]*inner {
		return fastConcat.stock(be, node, inputs, owned)
	}
	outer := 1
	for a := 0; a < axis; a++ {
		outer *= out.Dimensions[a]
	}
	dstBuf := be.NewBuffer(out)
	dstAny, err := be.BufferData(dstBuf)
	if err != nil {
		return nil, err
	}
	dst := dstAny.([]float32)
	fastConcat.calls.Add(1)
	parallelRange(outer, outer*total, func(lo, hi int) {
		for o := lo; o < hi; o++ {
			d := dst[o*total : (o+1)*total]
			for i, src := range srcs {
				n := rows[i]
				copy(d[:n], src[o*n:(o+1)*n])
				d = d[n:]
			}
		}
	})
	return dstBuf, nil
}
