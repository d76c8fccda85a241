package kernels

import (
	"sync/atomic"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// Fast row Gather and row ScatterSum (see simplego_hooks.go): on the pure-Go
// backend our convolutions build the im2col matrix with one Gather of pixel
// rows, whose stock gradient is a ScatterSum of the rows back (conv.go).
// simplego runs both one element at a time on one core; these executors take
// exactly that pattern — operand [R, C], indices [N, 1] — copying or adding
// whole rows on GOMAXPROCS goroutines, and leave every other gather or
// scatter to the stock executors.

var fastGather struct {
	installed            bool
	stockGather, stockSc simplegoExecutor
	on                   atomic.Bool
	calls                atomic.Int64
}

// GatherInstalled reports whether row Gathers and ScatterSums run through
// the fast executors: engine builds its im2col matrices with one Gather then.
func GatherInstalled() bool { return fastGather.installed }

func init() {
	stock, reason := replaceExecutors([]backends.OpType{backends.OpTypeGather, backends.OpTypeScatterSum},
		[]simplegoExecutor{execFastGather, execFastScatterSum})
	if reason != "" {
		return
	}
	fastGather.stockGather, fastGather.stockSc = stock[0], stock[1]
	fastGather.installed = true
	fastGather.on.Store(true)
}

// rowIndices returns the int32 indices [N, 1] of a row gather or scatter.
func rowIndices(be *simplego.Backend, buf *simplego.Buffer) ([]int32, bool) {
	s, err := be.BufferShape(buf)
	if err != nil || s.DType != dtypes.Int32 || s.Rank() != 2 || s.Dimensions[1] != 1 {
		return nil, false
	}
	f, err := be.BufferData(buf)
	if err != nil {
		return nil, false
	}
	return f.([]int32)[:s.Dimensions[0]], true
}

// float32Rows returns the data of a float32 [rows, C] buffer.
func float32Rows(be *simplego.Backend, buf *simplego.Buffer) (data []float32, rows, c int, ok bool) {
	s, err := be.BufferShape(buf)
	if err != nil || s.DType != dtypes.Float32 || s.Rank() != 2 {
		return nil, 0, 0, false
	}
	f, err := be.BufferData(buf)
	if err != nil {
		return nil, 0, 0, false
	}
	return f.([]float32)[:s.Size()], s.Dimensions[0], s.Dimensions[1], true
}

func equalInts(a []int, b ...int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// execFastGather: out[i, :] = operand[clamp(idx[i]), :], clamped to
// [0, R-1] as the stock Gather does.
func execFastGather(be *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	stock := fastGather.stockGather
	if !fastGather.on.Load() || len(inputs) != 2 {
		return stock(be, node, inputs, owned)
	}
	out, data := nodeShapeAndData(node)
	src, r, c, ok1 := float32Rows(be, inputs[0])
	idx, ok2 := rowIndices(be, inputs[1])
	p, n, ok3 := intFields(data, []string{"offsetOutputAxes", "collapsedSlicesAxes", "startIndexMap", "sliceSizes"}, []string{"indexVectorAxis"})
	if !ok1 || !ok2 || !ok3 || r == 0 || !equalInts(p[0], 1) || !equalInts(p[1], 0) || !equalInts(p[2], 0) ||
		!equalInts(p[3], 1, c) || n[0] != 1 || !equalInts(out.Dimensions, len(idx), c) || out.DType != dtypes.Float32 {
		return stock(be, node, inputs, owned)
	}
	dstBuf := be.NewBuffer(out)
	dstAny, err := be.BufferData(dstBuf)
	if err != nil {
		return nil, err
	}
	dst := dstAny.([]float32)
	fastGather.calls.Add(1)
	parallelRange(len(idx), len(idx)*c, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			k := min(max(int(idx[i]), 0), r-1)
			copy(dst[i*c:(i+1)*c], src[k*c:(k+1)*c])
		}
	})
	return dstBuf, nil
}

// execFastScatterSum: out = operand; out[idx[i], :] += updates[i, :]. Each
// goroutine owns a range of output rows and adds, in index order, the updates
// that land there, so the sums are the stock executor's to the bit. Indices
// out of range go to the stock executor.
func execFastScatterSum(be *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	stock := fastGather.stockSc
	if !fastGather.on.Load() || len(inputs) != 3 {
		return stock(be, node, inputs, owned)
	}
	out, data := nodeShapeAndData(node)
	base, r, c, ok1 := float32Rows(be, inputs[0])
	idx, ok2 := rowIndices(be, inputs[1])
	upd, nu, cu, ok3 := float32Rows(be, inputs[2])
	p, n, ok4 := intFields(data, []string{"updateWindowAxes", "insertedWindowAxes", "scatterAxesToOperandAxes"}, []string{"indexVectorAxis"})
	if !ok1 || !ok2 || !ok3 || !ok4 || nu != len(idx) || cu != c || !equalInts(p[0], 1) || !equalInts(p[1], 0) ||
		!equalInts(p[2], 0) || n[0] != 1 || !equalInts(out.Dimensions, r, c) || out.DType != dtypes.Float32 {
		return stock(be, node, inputs, owned)
	}
	for _, k := range idx {
		if k < 0 || int(k) >= r {
			return stock(be, node, inputs, owned)
		}
	}
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
	dst := dstAny.([]float32)[:r*c]
	if inputs[0] != nil {
		copy(dst, base)
	}
	fastGather.calls.Add(1)
	parallelRange(r, len(idx)*c, func(lo, hi int) {
		for i, k := range idx {
			if int(k) < lo || int(k) >= hi {
				continue
			}
			d, u := dst[int(k)*c:(int(k)+1)*c], upd[i*c:(i+1)*c]
			for j := range d {
				d[j] += u[j]
			}
		}
	})
	return dstBuf, nil
}
