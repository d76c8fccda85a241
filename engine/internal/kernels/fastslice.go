package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// Fast Slice (see simplego_hooks.go). simplego's Slice moves one element at a
// time through a generic index iterator; our convolutions slice every kernel
// tap out of the padded input (and the gradients slice them back), which made
// Slice 20% of a GAN step once the matmuls ran in OpenBLAS. This executor
// copies contiguous runs (whole trailing axes where the slice keeps them
// whole) and splits large outputs between GOMAXPROCS goroutines.

var fastSlice struct {
	installed bool
	stock     simplegoExecutor
	on        atomic.Bool
	calls     atomic.Int64
}

func init() {
	stock, reason := replaceExecutors([]backends.OpType{backends.OpTypeSlice}, []simplegoExecutor{execFastSlice})
	if reason != "" {
		return
	}
	fastSlice.stock = stock[0]
	fastSlice.installed = true
	fastSlice.on.Store(true)
}

func execFastSlice(be *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	if !fastSlice.on.Load() {
		return fastSlice.stock(be, node, inputs, owned)
	}
	out, data := nodeShapeAndData(node)
	in, err := be.BufferShape(inputs[0])
	if err != nil || out.DType != dtypes.Float32 || in.DType != dtypes.Float32 || in.Rank() != out.Rank() || in.Rank() == 0 {
		return fastSlice.stock(be, node, inputs, owned)
	}
	params, _, ok := intFields(data, []string{"starts", "limits", "strides"}, nil)
	if !ok || len(params[0]) != in.Rank() || len(params[2]) != in.Rank() {
		return fastSlice.stock(be, node, inputs, owned)
	}
	srcAny, err := be.BufferData(inputs[0])
	if err != nil {
		return nil, err
	}
	dstBuf := be.NewBuffer(out)
	dstAny, err := be.BufferData(dstBuf)
	if err != nil {
		return nil, err
	}
	fastSlice.calls.Add(1)
	sliceFloat32(srcAny.([]float32), in.Dimensions, params[0], params[2], out.Dimensions, dstAny.([]float32))
	return dstBuf, nil
}

// sliceFloat32 writes into dst [outDims] the elements src[starts + i·strides]
// of src [inDims].
func sliceFloat32(src []float32, inDims, starts, strides, outDims []int, dst []float32) {
	stridedCopy(src, inDims, starts, strides, dst, outDims, true)
}

// stridedCopy moves elements between a dense array [denseDims] and the
// positions big[starts + i·steps] of an array [bigDims]: into dense (Slice)
// when toDense, out of it (Pad) otherwise. Both directions walk the same
// index space, so they share one loop: whole trailing axes that both arrays
// hold contiguously are copied as runs, and large copies are split between
// GOMAXPROCS goroutines.
func stridedCopy(big []float32, bigDims, starts, steps []int, dense []float32, denseDims []int, toDense bool) {
	r := len(bigDims)
	bigStride := make([]int, r)
	s := 1
	for a := r - 1; a >= 0; a-- {
		bigStride[a] = s
		s *= bigDims[a]
	}
	// Axes [inner, r) form one contiguous run in both arrays.
	inner, run := r, 1
	for a := r - 1; a >= 0 && steps[a] == 1; a-- {
		run *= denseDims[a]
		inner = a
		if denseDims[a] != bigDims[a] {
			break
		}
	}
	base := 0
	for a := 0; a < r; a++ {
		base += starts[a] * bigStride[a]
	}
	outer := 1
	for a := 0; a < inner; a++ {
		outer *= denseDims[a]
	}
	if outer == 0 || run == 0 {
		return
	}
	parallelRange(outer, outer*run, func(lo, hi int) {
		idx := make([]int, inner)
		rem := lo
		for a := inner - 1; a >= 0; a-- {
			idx[a] = rem % denseDims[a]
			rem /= denseDims[a]
		}
		off := base
		for a := 0; a < inner; a++ {
			off += idx[a] * steps[a] * bigStride[a]
		}
		for o := lo; o < hi; o++ {
			switch {
			case run == 1 && toDense:
				dense[o] = big[off]
			case run == 1:
				big[off] = dense[o]
			case toDense:
				copy(dense[o*run:(o+1)*run], big[off:off+run])
			default:
				copy(big[off:off+run], dense[o*run:(o+1)*run])
			}
			for a := inner - 1; a >= 0; a-- {
				idx[a]++
				off += steps[a] * bigStride[a]
				if idx[a] < denseDims[a] {
					break
				}
				off -= idx[a] * steps[a] * bigStride[a]
				idx[a] = 0
			}
		}
	})
}

// parallelRange calls fn on GOMAXPROCS consecutive parts of [0, n) at once
// when the work (in elements) is large enough to pay for the goroutines.
func parallelRange(n, work int, fn func(lo, hi int)) {
	p := runtime.GOMAXPROCS(0)
	if p > n {
		p = n
	}
	if p <= 1 || work < 1<<15 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < p; i++ {
		lo, hi := i*n/p, (i+1)*n/p
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}
