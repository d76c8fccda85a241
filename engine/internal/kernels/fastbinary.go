package kernels

import (
	"sync/atomic"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Fast elementwise Add, Sub, Mul and Max on float32 (see simplego_hooks.go).
// simplego runs them on one core, and every broadcast (a bias added to
// [B, H, W, C], a per-sample scale) through a generic per-element index
// iterator. These executors take the shapes our layers produce: operands of
// the output's shape, scalars, "periodic" operands (ones on the leading axes,
// the output's sizes on the trailing ones: a bias) and "repeated" operands
// (the output's sizes on the leading axes, ones on the trailing ones: a
// per-sample factor); they split the work between GOMAXPROCS goroutines and,
// like simplego, write into an operand's buffer when the executor owns it.
// Other broadcasts along any axes but the last go row by row (rowsBinary);
// the rest to the stock executor.

const (
	opIdxAdd = iota
	opIdxSub
	opIdxMul
	opIdxMax
)

var fastBinary struct {
	installed bool
	stock     [4]simplegoExecutor
	on        atomic.Bool
	calls     atomic.Int64
}

func init() {
	stock, reason := replaceExecutors([]backends.OpType{backends.OpTypeAdd, backends.OpTypeSub, backends.OpTypeMul, backends.OpTypeMax},
		[]simplegoExecutor{binaryExecutor(opIdxAdd), binaryExecutor(opIdxSub), binaryExecutor(opIdxMul), binaryExecutor(opIdxMax)})
	if reason != "" {
		return
	}
	copy(fastBinary.stock[:], stock)
	fastBinary.installed = true
	fastBinary.on.Store(true)
}

// operandKind is how one operand's elements map onto the output's.
type operandKind int

const (
	kindFull     operandKind = iota // same shape as the output
	kindPeriodic                    // x[i mod P]
	kindRepeated                    // x[i div Q]
	kindScalar                      // x[0]
)

// classify returns how x [dims] broadcasts to out, with its period (P or Q),
// or ok false.
func classify(x, out shapes.Shape) (kind operandKind, period int, ok bool) {
	if x.Size() == 1 {
		return kindScalar, 1, true
	}
	if x.Rank() != out.Rank() {
		return 0, 0, false
	}
	if x.Equal(out) {
		return kindFull, out.Size(), true
	}
	r := out.Rank()
	// Periodic: ones then equal.
	k := 0
	for k < r && x.Dimensions[k] == 1 {
		k++
	}
	equalFrom := true
	for a := k; a < r; a++ {
		equalFrom = equalFrom && x.Dimensions[a] == out.Dimensions[a]
	}
	if equalFrom {
		return kindPeriodic, x.Size(), true
	}
	// Repeated: equal then ones.
	k = r
	for k > 0 && x.Dimensions[k-1] == 1 {
		k--
	}
	for a := 0; a < k; a++ {
		if x.Dimensions[a] != out.Dimensions[a] {
			return 0, 0, false
		}
	}
	return kindRepeated, out.Size() / x.Size(), true
}

func binaryExecutor(op int) simplegoExecutor {
	return func(be *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
		stock := fastBinary.stock[op]
		out, _ := nodeShapeAndData(node)
		if !fastBinary.on.Load() || len(inputs) != 2 || out.DType != dtypes.Float32 {
			return stock(be, node, inputs, owned)
		}
		as, err1 := be.BufferShape(inputs[0])
		bs, err2 := be.BufferShape(inputs[1])
		if err1 != nil || err2 != nil || as.DType != dtypes.Float32 || bs.DType != dtypes.Float32 {
			return stock(be, node, inputs, owned)
		}
		ak, ap, ok1 := classify(as, out)
		bk, bp, ok2 := classify(bs, out)
		if !ok1 || !ok2 {
			return rowsBinary(op, be, node, inputs, owned, out, as, bs)
		}
		// Block length: within a block every operand is a slice or a constant.
		n := out.Size()
		block := 0
		for _, kp := range [][2]int{{int(ak), ap}, {int(bk), bp}} {
			if operandKind(kp[0]) == kindPeriodic || operandKind(kp[0]) == kindRepeated {
				if block != 0 && block != kp[1] {
					return rowsBinary(op, be, node, inputs, owned, out, as, bs)
				}
				block = kp[1]
			}
		}
		if block == 0 {
			block = min(n, 1<<14)
		}
		a, b, _, err := float32Pair(be, inputs) // float32 checked above
		if err != nil {
			return nil, err
		}
		a, b = a[:as.Size()], b[:bs.Size()]
		var outBuf *simplego.Buffer
		switch {
		case owned[1] && bk == kindFull:
			outBuf, inputs[1] = inputs[1], nil
		case owned[0] && ak == kindFull:
			outBuf, inputs[0] = inputs[0], nil
		default:
			outBuf = be.NewBuffer(out)
		}
		oAny, err := be.BufferData(outBuf)
		if err != nil {
			return nil, err
		}
		dst := oAny.([]float32)[:n]
		fastBinary.calls.Add(1)
		blocks := (n + block - 1) / block
		parallelRange(blocks, n, func(lo, hi int) {
			for blk := lo; blk < hi; blk++ {
				s, e := blk*block, min((blk+1)*block, n)
				av, ac, aConst := operandBlock(a, ak, s, e, blk)
				bv, bc, bConst := operandBlock(b, bk, s, e, blk)
				binaryBlock(op, dst[s:e], av, ac, aConst, bv, bc, bConst)
			}
		})
		return outBuf, nil
	}
}

// rowStrides returns x's strides along out's axes (0 where x has size 1 and
// is broadcast), and whether x runs along out's last axis (else it is
// constant along it); ok is false unless x is a scalar or has out's rank with
// sizes 1 or out's.
func rowStrides(x, out shapes.Shape) (strides []int, full bool, ok bool) {
	r := out.Rank()
	strides = make([]int, r)
	if x.Size() == 1 {
		return strides, false, true
	}
	if x.Rank() != r {
		return nil, false, false
	}
	s := 1
	for a := r - 1; a >= 0; a-- {
		switch d := x.Dimensions[a]; {
		case d == out.Dimensions[a]:
			strides[a] = s
		case d != 1:
			return nil, false, false
		}
		s *= x.Dimensions[a]
	}
	return strides, strides[r-1] == 1 && out.Dimensions[r-1] > 1, true
}

// rowsBinary takes the broadcasts classify does not (a [B,1,D] operand
// against a [1,N,D] one: the warped editor's z − support vectors, a middle
// axis) row by row along the last axis: each operand's row is a slice or a
// constant found through its strides. Rows shorter than 8 go to the stock
// executor, where per-row bookkeeping would cost more than it saves.
func rowsBinary(op int, be *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool, out, as, bs shapes.Shape) (*simplego.Buffer, error) {
	stock := fastBinary.stock[op]
	r := out.Rank()
	if r == 0 || out.Dimensions[r-1] < 8 {
		return stock(be, node, inputs, owned)
	}
	aStr, aFull, ok1 := rowStrides(as, out)
	bStr, bFull, ok2 := rowStrides(bs, out)
	if !ok1 || !ok2 {
		return stock(be, node, inputs, owned)
	}
	a, b, _, err := float32Pair(be, inputs) // float32 checked by binaryExecutor
	if err != nil {
		return nil, err
	}
	a, b = a[:as.Size()], b[:bs.Size()]
	outBuf := be.NewBuffer(out)
	oAny, err := be.BufferData(outBuf)
	if err != nil {
		return nil, err
	}
	n, L := out.Size(), out.Dimensions[r-1]
	dst := oAny.([]float32)[:n]
	fastBinary.calls.Add(1)
	parallelRange(n/L, n, func(lo, hi int) {
		idx := make([]int, r-1) // index of row lo over the outer axes
		rem := lo
		for ax := r - 2; ax >= 0; ax-- {
			idx[ax] = rem % out.Dimensions[ax]
			rem /= out.Dimensions[ax]
		}
		aOff, bOff := 0, 0
		for ax := range idx {
			aOff += idx[ax] * aStr[ax]
			bOff += idx[ax] * bStr[ax]
		}
		for row := lo; row < hi; row++ {
			var av, bv []float32
			var ac, bc float32
			if aFull {
				av = a[aOff : aOff+L]
			} else {
				ac = a[aOff]
			}
			if bFull {
				bv = b[bOff : bOff+L]
			} else {
				bc = b[bOff]
			}
			binaryBlock(op, dst[row*L:(row+1)*L], av, ac, !aFull, bv, bc, !bFull)
			for ax := r - 2; ax >= 0; ax-- {
				idx[ax]++
				aOff += aStr[ax]
				bOff += bStr[ax]
				if idx[ax] < out.Dimensions[ax] {
					break
				}
				aOff -= idx[ax] * aStr[ax]
				bOff -= idx[ax] * bStr[ax]
				idx[ax] = 0
			}
		}
	})
	return outBuf, nil
}

// operandBlock returns the operand's elements for output [s, e) of block blk:
// a slice, or a constant.
func operandBlock(x []float32, k operandKind, s, e, blk int) ([]float32, float32, bool) {
	switch k {
	case kindFull:
		return x[s:e], 0, false
	case kindPeriodic:
		return x[:e-s], 0, false
	case kindRepeated:
		return nil, x[blk], true
	default:
		return nil, x[0], true
	}
}

func binaryBlock(op int, out, as []float32, ac float32, aConst bool, bs []float32, bc float32, bConst bool) {
	if aConst && bConst {
		var v float32
		switch op {
		case opIdxAdd:
			v = ac + bc
		case opIdxSub:
			v = ac - bc
		case opIdxMul:
			v = ac * bc
		case opIdxMax:
			v = max(ac, bc)
		}
		for i := range out {
			out[i] = v
		}
		return
	}
	if !aConst {
		as = as[:len(out)]
	}
	if !bConst {
		bs = bs[:len(out)]
	}
	switch op {
	case opIdxAdd:
		switch {
		case aConst:
			for i := range out {
				out[i] = ac + bs[i]
			}
		case bConst:
			for i := range out {
				out[i] = as[i] + bc
			}
		default:
			for i := range out {
				out[i] = as[i] + bs[i]
			}
		}
	case opIdxSub:
		switch {
		case aConst:
			for i := range out {
				out[i] = ac - bs[i]
			}
		case bConst:
			for i := range out {
				out[i] = as[i] - bc
			}
		default:
			for i := range out {
				out[i] = as[i] - bs[i]
			}
		}
	case opIdxMul:
		switch {
		case aConst:
			for i := range out {
				out[i] = ac * bs[i]
			}
		case bConst:
			for i := range out {
				out[i] = as[i] * bc
			}
		default:
			for i := range out {
				out[i] = as[i] * bs[i]
			}
		}
	case opIdxMax:
		switch {
		case aConst:
			for i := range out {
				out[i] = max(ac, bs[i])
			}
		case bConst:
			for i := range out {
				out[i] = max(as[i], bc)
			}
		default:
			for i := range out {
				out[i] = max(as[i], bs[i])
			}
		}
	}
}
