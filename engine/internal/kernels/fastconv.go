//go:build cgo && !noblas

package kernels

// Fast CPU convolutions (see simplego_hooks.go): on the pure-Go backend,
// Conv2D builds one ConvGeneral node per convolution (nativeConv2D in
// conv.go), whose gradient is two more ConvGeneral nodes, and this executor
// runs the three layouts those nodes have through oneDNN's convolution
// primitives (dnnlconv_cgo.go): forward, backward-data and
// backward-weights. Every other ConvGeneral goes to simplego's own executor,
// which computes the same values slowly (the tests compare the two).
//
// Why: with im2col, a convolution copied its input into a matrix k² times
// its size, kept that matrix for the weight gradient, and scattered the
// gradient back through another; those copies were half of a step beside the
// sgemm, and most of our memory above PyTorch's (docs/performance.md).

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

var fastConv nativeExecutor

func init() {
	fastConv.install(backends.OpTypeConvGeneral, execFastConv, func() string {
		if err := openDNNLConv(); err != nil {
			return err.Error()
		}
		return ""
	})
}

// ConvInstalled reports whether ConvGeneral nodes of the ConvAxes layouts
// run through oneDNN: engine builds its convolutions as such nodes only then.
func ConvInstalled() bool { return fastConv.installed }

// ConvTime is the wall time this process has spent in oneDNN convolutions
// (zero without them): benchmarks report its share of a step.
func ConvTime() time.Duration { return time.Duration(fastConv.nanos.Load()) }

// convPlan is how one ConvGeneral node maps onto a oneDNN convolution.
type convPlan struct {
	ok   bool
	geom dnnlGeom
}

func convPlanFor(be *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer) *convPlan {
	return fastConv.plans.get(node, func() any {
		is, err1 := be.BufferShape(inputs[0])
		ks, err2 := be.BufferShape(inputs[1])
		if err1 != nil || err2 != nil {
			return &convPlan{}
		}
		return makeConvPlan(node, is.Dimensions, ks.Dimensions, is.DType == dtypes.Float32 && ks.DType == dtypes.Float32)
	}).(*convPlan)
}

// convParams reads a simplego ConvGeneral node's parameters; ok is false
// when a field is missing or of another type.
func convParams(data any) (axes [12]int, strides, inDil, kDil []int, pads [][2]int, groups int, ok bool) {
	v := reflect.ValueOf(data)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return
	}
	v = v.Elem()
	a := v.FieldByName("axes")
	if !a.IsValid() || a.Kind() != reflect.Struct {
		return
	}
	i := 0
	for _, name := range []string{"InputBatch", "InputChannels", "InputSpatial", "KernelInputChannels", "KernelOutputChannels",
		"KernelSpatial", "OutputBatch", "OutputChannels", "OutputSpatial"} {
		f := a.FieldByName(name)
		switch {
		case f.IsValid() && f.Kind() == reflect.Int:
			axes[i] = int(f.Int())
			i++
		case f.IsValid() && f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Int && f.Len() == 2:
			axes[i], axes[i+1] = int(f.Index(0).Int()), int(f.Index(1).Int())
			i += 2
		default:
			return
		}
	}
	ints, counts, ok2 := intFields(data, []string{"strides", "inputDilations", "kernelDilations"}, []string{"channelGroupCount", "batchGroupCount"})
	if !ok2 || len(ints[0]) != 2 || len(ints[1]) != 2 || len(ints[2]) != 2 || counts[0] != 1 || counts[1] != 1 {
		return
	}
	pf := v.FieldByName("paddings")
	if !pf.IsValid() || pf.Kind() != reflect.Slice || pf.Len() != 2 || pf.Type().Elem() != reflect.TypeOf([2]int{}) {
		return
	}
	pads = [][2]int{{int(pf.Index(0).Index(0).Int()), int(pf.Index(0).Index(1).Int())}, {int(pf.Index(1).Index(0).Int()), int(pf.Index(1).Index(1).Int())}}
	return axes, ints[0], ints[1], ints[2], pads, 1, true
}

func makeConvPlan(node *simplego.Node, in, k []int, f32 bool) *convPlan {
	p := &convPlan{}
	out, data := nodeShapeAndData(node)
	if !f32 || out.DType != dtypes.Float32 || out.Rank() != 4 || len(in) != 4 || len(k) != 4 || data == nil {
		return p
	}
	axes, strides, inDil, kDil, pads, _, ok := convParams(data)
	if !ok {
		return p
	}
	o := out.Dimensions
	ones := func(s []int) bool { return s[0] == 1 && s[1] == 1 }
	var g dnnlGeom
	switch axes {
	case ConvAxesForward: // x [n,h,w,c] ⊛ kernel [kh,kw,c,f] → y [n,oh,ow,f]
		if !ones(inDil) || !ones(kDil) {
			return p
		}
		g = dnnlGeom{kind: 0, n: in[0], h: in[1], w: in[2], c: in[3], kh: k[0], kw: k[1], f: k[3], oh: o[1], ow: o[2],
			sh: strides[0], sw: strides[1], pt: pads[0][0], pb: pads[0][1], pl: pads[1][0], pr: pads[1][1]}
	case ConvAxesData: // dy [n,oh,ow,f] with input dilation s ⊛ reversed kernel [kh,kw,c,f] → dx [n,h,w,c]
		if !ones(strides) || !ones(kDil) {
			return p
		}
		g = dnnlGeom{kind: 1, n: in[0], oh: in[1], ow: in[2], f: in[3], kh: k[0], kw: k[1], c: k[2], h: o[1], w: o[2],
			sh: inDil[0], sw: inDil[1], pt: k[0] - 1 - pads[0][0], pb: k[0] - 1 - pads[0][1], pl: k[1] - 1 - pads[1][0], pr: k[1] - 1 - pads[1][1]}
	case ConvAxesWeights: // x [n,h,w,c] ⊛ dy [n,oh,ow,f] (kernel dilation s) over n → dkernel [kh,kw,c,f]
		if !ones(strides) || !ones(inDil) {
			return p
		}
		g = dnnlGeom{kind: 2, n: in[0], h: in[1], w: in[2], c: in[3], oh: k[1], ow: k[2], f: k[3], kh: o[0], kw: o[1],
			sh: kDil[0], sw: kDil[1], pt: pads[0][0], pb: pads[0][1], pl: pads[1][0], pr: pads[1][1]}
	default:
		return p
	}
	// The geometry must be one oneDNN accepts as exact: non-negative padding
	// and oh = (h + pt + pb − kh)/sh + 1 with no remainder.
	if g.pt < 0 || g.pb < 0 || g.pl < 0 || g.pr < 0 || g.sh < 1 || g.sw < 1 ||
		(g.h+g.pt+g.pb-g.kh)%g.sh != 0 || (g.w+g.pl+g.pr-g.kw)%g.sw != 0 ||
		g.oh != (g.h+g.pt+g.pb-g.kh)/g.sh+1 || g.ow != (g.w+g.pl+g.pr-g.kw)/g.sw+1 {
		return p
	}
	if g.kind == 0 && (o[0] != g.n || o[3] != g.f) || g.kind == 1 && (o[0] != g.n || o[3] != g.c || k[3] != g.f) ||
		g.kind == 2 && (k[0] != g.n || o[2] != g.c || o[3] != g.f) || g.kind == 0 && k[2] != g.c {
		return p
	}
	p.ok, p.geom = true, g
	return p
}

func execFastConv(be *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	if !fastConv.on.Load() || len(inputs) != 2 {
		return fastConv.stock(be, node, inputs, owned)
	}
	p := convPlanFor(be, node, inputs)
	if !p.ok {
		return fastConv.stock(be, node, inputs, owned)
	}
	a, b, ok, err := float32Pair(be, inputs)
	if err != nil {
		return nil, err
	}
	if !ok || len(a) == 0 || len(b) == 0 {
		return fastConv.stock(be, node, inputs, owned)
	}
	g := p.geom
	// The plan was made from the node's first inputs; a node run again with
	// operands of other sizes is an error here, never a read past them in C.
	if la, lb, _ := g.lengths(); len(a) != la || len(b) != lb {
		return nil, fmt.Errorf("engine: ConvGeneral planned as %+v got operands of %d and %d elements, want %d and %d", g, len(a), len(b), la, lb)
	}
	if g.kind == 1 { // the node's kernel is reversed on both spatial axes: undo it
		b = reverseHW(b, g.kh, g.kw, g.c*g.f)
	}
	out, _ := nodeShapeAndData(node)
	ob, od, err := newFloat32Buffer(be, out, "ConvGeneral")
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	err = dnnlConv(g, a, b, od)
	fastConv.nanos.Add(int64(time.Since(t0)))
	if err != nil {
		be.BufferFinalize(ob)
		if errors.Is(err, errDNNLRefused) {
			fastConv.fallbacks.Add(1)
			return fastConv.stock(be, node, inputs, owned)
		}
		return nil, err
	}
	fastConv.calls.Add(1)
	return ob, nil
}

// reverseHW returns a copy of kernel [kh, kw, rest] with both spatial axes reversed.
func reverseHW(k []float32, kh, kw, rest int) []float32 {
	r := make([]float32, len(k))
	for i := 0; i < kh; i++ {
		for j := 0; j < kw; j++ {
			copy(r[(i*kw+j)*rest:(i*kw+j+1)*rest], k[((kh-1-i)*kw+kw-1-j)*rest:((kh-1-i)*kw+kw-j)*rest])
		}
	}
	return r
}
