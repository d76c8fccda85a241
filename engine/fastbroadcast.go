package engine

import (
	"sync/atomic"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// Fast BroadcastInDim and Sign on float32 (see simplego_hooks.go).
// BroadcastInDim is nearest upsampling (every generator block), the
// per-pixel scale of pixel norm and the gradient of every reduction; Sign is
// the gradient of lrelu's Max. simplego runs both one element at a time on
// one core; these copy or fill contiguous runs, and split the work between
// GOMAXPROCS goroutines.

var fastBroadcast struct {
	installed   bool
	stock, sign simplegoExecutor
	on          atomic.Bool
	calls       atomic.Int64
}

func init() {
	if simplegoHooks.reason != "" || stockKernelsOnly() {
		return
	}
	fastBroadcast.stock = simplegoNodeExecutors[backends.OpTypeBroadcastInDim]
	fastBroadcast.sign = simplegoNodeExecutors[backends.OpTypeSign]
	if fastBroadcast.stock == nil || fastBroadcast.sign == nil {
		return
	}
	simplegoNodeExecutors[backends.OpTypeBroadcastInDim] = execFastBroadcastInDim
	simplegoNodeExecutors[backends.OpTypeSign] = execFastSign
	fastBroadcast.installed = true
	fastBroadcast.on.Store(true)
}

func execFastBroadcastInDim(be *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	stock := fastBroadcast.stock
	out, data := nodeShapeAndData(node)
	axes, ok := data.([]int)
	if !fastBroadcast.on.Load() || !ok || len(inputs) != 1 || out.DType != dtypes.Float32 || out.Rank() == 0 {
		return stock(be, node, inputs, owned)
	}
	in, err := be.BufferShape(inputs[0])
	if err != nil || in.DType != dtypes.Float32 || len(axes) != in.Rank() {
		return stock(be, node, inputs, owned)
	}
	// The operand's size along each output axis: its own on the axes it maps
	// to, 1 elsewhere.
	r := out.Rank()
	src := make([]int, r)
	for a := range src {
		src[a] = 1
	}
	for i, a := range axes {
		if a < 0 || a >= r || (in.Dimensions[i] != 1 && in.Dimensions[i] != out.Dimensions[a]) {
			return stock(be, node, inputs, owned)
		}
		src[a] = in.Dimensions[i]
	}
	srcStride := make([]int, r) // 0 on broadcast axes
	s := 1
	for a := r - 1; a >= 0; a-- {
		if src[a] != 1 {
			srcStride[a] = s
		}
		s *= src[a]
	}
	// Axes [inner, r) are all copied (operand size = output size) or all
	// broadcast (operand size 1): one run copied or filled per outer index.
	inner, run := r, 1
	copied := src[r-1] == out.Dimensions[r-1] && out.Dimensions[r-1] != 1
	for a := r - 1; a >= 0; a-- {
		if out.Dimensions[a] != 1 && (src[a] == out.Dimensions[a]) != copied {
			break
		}
		run *= out.Dimensions[a]
		inner = a
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
	x, dst := srcAny.([]float32), dstAny.([]float32)
	outer := 1
	for a := 0; a < inner; a++ {
		outer *= out.Dimensions[a]
	}
	fastBroadcast.calls.Add(1)
	parallelRange(outer, outer*run, func(lo, hi int) {
		idx := make([]int, inner)
		rem := lo
		for a := inner - 1; a >= 0; a-- {
			idx[a] = rem % out.Dimensions[a]
			rem /= out.Dimensions[a]
		}
		off := 0
		for a := 0; a < inner; a++ {
			off += idx[a] * srcStride[a]
		}
		for o := lo; o < hi; o++ {
			d := dst[o*run : (o+1)*run]
			if copied {
				copy(d, x[off:off+run])
			} else {
				v := x[off]
				for i := range d {
					d[i] = v
				}
			}
			for a := inner - 1; a >= 0; a-- {
				idx[a]++
				off += srcStride[a]
				if idx[a] < out.Dimensions[a] {
					break
				}
				off -= idx[a] * srcStride[a]
				idx[a] = 0
			}
		}
	})
	return dstBuf, nil
}

// execFastSign is Sign: -1, 0 or 1 (NaN gives 0, as in simplego).
func execFastSign(be *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	out, _ := nodeShapeAndData(node)
	if !fastBroadcast.on.Load() || len(inputs) != 1 || out.DType != dtypes.Float32 {
		return fastBroadcast.sign(be, node, inputs, owned)
	}
	srcAny, err := be.BufferData(inputs[0])
	if err != nil {
		return nil, err
	}
	src := srcAny.([]float32)[:out.Size()]
	var dstBuf *simplego.Buffer
	if owned[0] {
		dstBuf, inputs[0] = inputs[0], nil
	} else {
		dstBuf = be.NewBuffer(out)
	}
	dstAny, err := be.BufferData(dstBuf)
	if err != nil {
		return nil, err
	}
	dst := dstAny.([]float32)[:len(src)]
	fastBroadcast.calls.Add(1)
	parallelRange(len(src), len(src), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			switch v := src[i]; {
			case v < 0:
				dst[i] = -1
			case v > 0:
				dst[i] = 1
			default:
				dst[i] = 0
			}
		}
	})
	return dstBuf, nil
}
