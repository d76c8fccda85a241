package kernels

import (
	"math"
	"sync/atomic"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Fast BroadcastInDim, Sign, Tanh and ReduceSum on float32 (see simplego_hooks.go).
// BroadcastInDim is nearest upsampling (every generator block), the
// per-pixel scale of pixel norm and the gradient of every reduction; Sign is
// the gradient of lrelu's Max; ReduceSum, over one block of adjacent axes, is
// every bias gradient and pixel norm's mean; Tanh is the generator's last
// activation (math.Tanh costs ~40 ns an element). simplego runs them one element
// at a time on one core; these copy, fill or add contiguous runs, and split
// the work between GOMAXPROCS goroutines.

var fastBroadcast struct {
	installed              bool
	stock, sign, reduceSum simplegoExecutor
	tanh                   simplegoExecutor
	on                     atomic.Bool
	calls                  atomic.Int64
}

func init() {
	stock, reason := replaceExecutors(
		[]backends.OpType{backends.OpTypeBroadcastInDim, backends.OpTypeSign, backends.OpTypeReduceSum, backends.OpTypeTanh},
		[]simplegoExecutor{execFastBroadcastInDim, execFastSign, execFastReduceSum, execFastTanh})
	if reason != "" {
		return
	}
	fastBroadcast.stock, fastBroadcast.sign, fastBroadcast.reduceSum, fastBroadcast.tanh = stock[0], stock[1], stock[2], stock[3]
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

// execFastTanh is simplego's Tanh (float32(math.Tanh(x)), the same bits) on
// every core.
func execFastTanh(be *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	out, _ := nodeShapeAndData(node)
	if !fastBroadcast.on.Load() || len(inputs) != 1 || out.DType != dtypes.Float32 {
		return fastBroadcast.tanh(be, node, inputs, owned)
	}
	src, dst, dstBuf, err := unaryFloat32(be, out, inputs, owned)
	if err != nil {
		return nil, err
	}
	fastBroadcast.calls.Add(1)
	// ~40 ns an element: worth two threads from a few thousand elements.
	parallelRange(len(src), 16*len(src), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			dst[i] = float32(math.Tanh(float64(src[i])))
		}
	})
	return dstBuf, nil
}

// unaryFloat32 returns a unary node's float32 operand and its output
// buffer: the operand's own when the executor owns it.
func unaryFloat32(be *simplego.Backend, out shapes.Shape, inputs []*simplego.Buffer, owned []bool) (src, dst []float32, dstBuf *simplego.Buffer, err error) {
	srcAny, err := be.BufferData(inputs[0])
	if err != nil {
		return nil, nil, nil, err
	}
	src = srcAny.([]float32)[:out.Size()]
	if owned[0] {
		dstBuf, inputs[0] = inputs[0], nil
	} else {
		dstBuf = be.NewBuffer(out)
	}
	dstAny, err := be.BufferData(dstBuf)
	if err != nil {
		return nil, nil, nil, err
	}
	return src, dstAny.([]float32)[:len(src)], dstBuf, nil
}

// execFastSign is Sign: -1, 0 or 1 (NaN gives 0, as in simplego).
func execFastSign(be *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	out, _ := nodeShapeAndData(node)
	if !fastBroadcast.on.Load() || len(inputs) != 1 || out.DType != dtypes.Float32 {
		return fastBroadcast.sign(be, node, inputs, owned)
	}
	src, dst, dstBuf, err := unaryFloat32(be, out, inputs, owned)
	if err != nil {
		return nil, err
	}
	fastBroadcast.calls.Add(1)
	parallelRange(len(src), len(src), func(lo, hi int) {
		// Without branches on the sign, which is random in a gradient.
		for i := lo; i < hi; i++ {
			v := src[i]
			s := math.Float32frombits(math.Float32bits(v)&0x80000000 | 0x3f800000) // ±1
			if v == 0 || v != v {
				s = 0
			}
			dst[i] = s
		}
	})
	return dstBuf, nil
}

// execFastReduceSum sums x viewed as [O, M, T] over M, where the reduced axes
// are one block of adjacent axes. With trailing axes left (T > 1: a bias
// gradient) each output element adds its inputs in the stock executor's
// order (increasing m, from zero), so results are the same to the bit, and
// the T independent sums keep the adder busy. Over the last axes (T = 1: a
// pixel norm's mean, a loss, a gradient norm) one sequential chain of adds
// is bound by the adder's latency, about 4 cycles per element; reduceRows
// sums with several accumulators instead (not the stock's bits, but the same
// bits on every run and thread count).
func execFastReduceSum(be *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	stock := fastBroadcast.reduceSum
	out, data := nodeShapeAndData(node)
	axes, ok := data.([]int)
	if !fastBroadcast.on.Load() || !ok || len(axes) == 0 || len(inputs) != 1 || out.DType != dtypes.Float32 {
		return stock(be, node, inputs, owned)
	}
	in, err := be.BufferShape(inputs[0])
	if err != nil || in.DType != dtypes.Float32 {
		return stock(be, node, inputs, owned)
	}
	lo, hi := in.Rank(), -1
	for _, a := range axes {
		lo, hi = min(lo, a), max(hi, a)
	}
	if lo < 0 || hi >= in.Rank() || hi-lo+1 != len(axes) { // not one adjacent block (or repeated axes)
		return stock(be, node, inputs, owned)
	}
	o, m, t := 1, 1, 1
	for a, d := range in.Dimensions {
		switch {
		case a < lo:
			o *= d
		case a <= hi:
			m *= d
		default:
			t *= d
		}
	}
	if o*t != out.Size() {
		return stock(be, node, inputs, owned)
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
	x, dst := srcAny.([]float32), dstAny.([]float32)[:o*t]
	fastBroadcast.calls.Add(1)
	if t == 1 {
		reduceRows(x[:o*m], dst, m)
		return dstBuf, nil
	}
	sum := func(oi, c0, c1 int) { // dst[oi, c0:c1]
		d := dst[oi*t+c0 : oi*t+c1]
		clear(d)
		for mi := 0; mi < m; mi++ {
			row := x[(oi*m+mi)*t+c0 : (oi*m+mi)*t+c1]
			for i := range d {
				d[i] += row[i]
			}
		}
	}
	if o >= 4 {
		parallelRange(o, o*m*t, func(lo, hi int) {
			for oi := lo; oi < hi; oi++ {
				sum(oi, 0, t)
			}
		})
	} else {
		parallelRange(t, o*m*t, func(lo, hi int) {
			for oi := 0; oi < o; oi++ {
				sum(oi, lo, hi)
			}
		})
	}
	return dstBuf, nil
}

// rowBlock is the fixed length of the pieces a long row is summed in, each
// piece on whichever thread, the pieces' sums then added in order: the
// result does not depend on GOMAXPROCS or on scheduling.
const rowBlock = 1 << 14

// reduceRows sets dst[i] to the sum of x[i*m : (i+1)*m].
func reduceRows(x, dst []float32, m int) {
	o := len(dst)
	if o >= 4 || m <= rowBlock {
		parallelRange(o, o*m, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				dst[i] = sumBlocks(x[i*m : (i+1)*m])
			}
		})
		return
	}
	// Few long rows (a sum over everything): the pieces in parallel.
	for i := range dst {
		row := x[i*m : (i+1)*m]
		n := (m + rowBlock - 1) / rowBlock
		part := make([]float32, n)
		parallelRange(n, m, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				part[p] = sum8(row[p*rowBlock : min((p+1)*rowBlock, m)])
			}
		})
		var s float32
		for _, v := range part {
			s += v
		}
		dst[i] = s
	}
}

// sumBlocks sums x piece by piece of rowBlock, as reduceRows's long rows.
func sumBlocks(x []float32) float32 {
	var s float32
	for len(x) > rowBlock {
		s += sum8(x[:rowBlock])
		x = x[rowBlock:]
	}
	return s + sum8(x)
}

// sum8 sums x with eight independent accumulators (eight chains of adds the
// CPU overlaps), combined pairwise at the end.
func sum8(x []float32) float32 {
	var a0, a1, a2, a3, a4, a5, a6, a7 float32
	i := 0
	for ; i+8 <= len(x); i += 8 {
		v := x[i : i+8 : i+8]
		a0 += v[0]
		a1 += v[1]
		a2 += v[2]
		a3 += v[3]
		a4 += v[4]
		a5 += v[5]
		a6 += v[6]
		a7 += v[7]
	}
	for ; i < len(x); i++ {
		a0 += x[i]
	}
	return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
}
