package kernels

import (
	"reflect"
	"sync/atomic"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// Fast Pad (see simplego_hooks.go). The gradient of every kernel-tap slice of
// our convolutions is a Pad of the tap's gradient back to the input's size
// (with interior padding for strided taps), and simplego pads one element at
// a time. This executor fills and copies contiguous runs on GOMAXPROCS
// goroutines. Negative padding (cropping) is left to the stock executor.

var fastPad struct {
	installed bool
	stock     simplegoExecutor
	on        atomic.Bool
	calls     atomic.Int64
}

func init() {
	stock, reason := replaceExecutors([]backends.OpType{backends.OpTypePad}, []simplegoExecutor{execFastPad})
	if reason != "" {
		return
	}
	fastPad.stock = stock[0]
	fastPad.installed = true
	fastPad.on.Store(true)
}

// padAxes reads the node's []backends.PadAxis (field axesConfig).
func padAxes(data any) ([]backends.PadAxis, bool) {
	v := reflect.ValueOf(data)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, false
	}
	f := v.Elem().FieldByName("axesConfig")
	if !f.IsValid() || f.Kind() != reflect.Slice || f.Type().Elem() != reflect.TypeOf(backends.PadAxis{}) {
		return nil, false
	}
	axes := make([]backends.PadAxis, f.Len())
	for i := range axes {
		e := f.Index(i)
		axes[i] = backends.PadAxis{Start: int(e.Field(0).Int()), End: int(e.Field(1).Int()), Interior: int(e.Field(2).Int())}
	}
	return axes, true
}

func execFastPad(be *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	if !fastPad.on.Load() || len(inputs) != 2 {
		return fastPad.stock(be, node, inputs, owned)
	}
	out, data := nodeShapeAndData(node)
	in, err := be.BufferShape(inputs[0])
	axes, ok := padAxes(data)
	if err != nil || !ok || out.DType != dtypes.Float32 || in.DType != dtypes.Float32 || len(axes) != in.Rank() || in.Rank() == 0 || in.Size() == 0 {
		return fastPad.stock(be, node, inputs, owned)
	}
	starts, steps := make([]int, len(axes)), make([]int, len(axes))
	for a, p := range axes {
		if p.Start < 0 || p.End < 0 || p.Interior < 0 ||
			out.Dimensions[a] != p.Start+p.End+in.Dimensions[a]+(in.Dimensions[a]-1)*p.Interior {
			return fastPad.stock(be, node, inputs, owned)
		}
		starts[a], steps[a] = p.Start, p.Interior+1
	}
	srcAny, err := be.BufferData(inputs[0])
	if err != nil {
		return nil, err
	}
	fillAny, err := be.BufferData(inputs[1])
	if err != nil {
		return nil, err
	}
	dstBuf := be.NewBuffer(out)
	dstAny, err := be.BufferData(dstBuf)
	if err != nil {
		return nil, err
	}
	dst, fill := dstAny.([]float32), fillAny.([]float32)[0]
	fastPad.calls.Add(1)
	parallelRange(len(dst), len(dst), func(lo, hi int) {
		d := dst[lo:hi]
		if fill == 0 {
			clear(d)
			return
		}
		for i := range d {
			d[i] = fill
		}
	})
	padCopy(srcAny.([]float32), in.Dimensions, starts, steps, out.Dimensions, dst)
	return dstBuf, nil
}

// padCopy writes src [inDims] into dst [outDims] at dst[starts + i·steps]:
// the mirror image of sliceFloat32.
func padCopy(src []float32, inDims, starts, steps, outDims []int, dst []float32) {
	stridedCopy(dst, outDims, starts, steps, src, inDims, false)
}
