package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestFastKernelsInstalled fails when simplego's internals moved and the
// pure-Go fast executors could not be installed.
func TestFastKernelsInstalled(t *testing.T) {
	if stockKernelsOnly() {
		t.Logf("%s=stock: stock executors only", EnvKernels)
		return
	}
	for what, ok := range map[string]bool{"Slice": fastSlice.installed, "Concatenate": fastConcat.installed, "Pad": fastPad.installed,
		"binary ops": fastBinary.installed, "Gather/ScatterSum": fastGather.installed, "BroadcastInDim/Sign/Tanh/ReduceSum": fastBroadcast.installed} {
		if !ok {
			t.Errorf("fast %s not installed: %s", what, simplegoHooks.reason)
		}
	}
}

// TestFastPadMatchesStock compares the fast Pad with simplego's: edges only,
// interior padding (the gradient of a strided slice), a non-zero fill value.
// (Cropping, negative padding, is left to the stock executor, which panics on
// it in v0.27.2.)
func TestFastPadMatchesStock(t *testing.T) {
	requireFast(t, fastPad.installed, "fast Pad")
	r := rand.New(rand.NewPCG(9, 10))
	for _, tc := range []struct {
		name string
		dims []int
		axes []backends.PadAxis
		fill float32
	}{
		{"edges", []int{8, 16, 16, 32}, []backends.PadAxis{{}, {Start: 1, End: 1}, {Start: 2, End: 0}, {}}, 0},
		{"strided tap gradient", []int{8, 16, 16, 5}, []backends.PadAxis{{}, {Start: 1, End: 2, Interior: 1}, {Start: 3, End: 0, Interior: 1}, {}}, 0},
		{"last axis interior, fill 1.5", []int{30, 40}, []backends.PadAxis{{Start: 2, End: 1}, {Start: 0, End: 3, Interior: 2}}, 1.5},
	} {
		exec := graph.MustNewExec(backend(t), func(x *graph.Node) *graph.Node {
			return graph.Pad(x, graph.Scalar(x.Graph(), x.DType(), tc.fill), tc.axes...)
		})
		x := tensors.FromFlatDataAndDimensions(randVec32r(r, prod(tc.dims)), tc.dims...)
		run := func(fast bool) []float32 {
			fastPad.on.Store(fast)
			defer fastPad.on.Store(true)
			return tensors.MustCopyFlatData[float32](exec.MustExec(x)[0])
		}
		stock := run(false)
		before := fastPad.calls.Load()
		fast := run(true)
		if fastPad.calls.Load() == before {
			t.Errorf("%s: the fast Pad did not run", tc.name)
		}
		if len(fast) != len(stock) {
			t.Fatalf("%s: %d elements, stock %d", tc.name, len(fast), len(stock))
		}
		for i := range stock {
			if fast[i] != stock[i] {
				t.Errorf("%s: element %d is %g, stock %g", tc.name, i, fast[i], stock[i])
				break
			}
		}
	}
}

// TestFastConcatMatchesStock compares the fast Concatenate with simplego's
// on every axis, including the channel concatenation of kernel taps.
func TestFastConcatMatchesStock(t *testing.T) {
	requireFast(t, fastConcat.installed, "fast Concatenate")
	r := rand.New(rand.NewPCG(7, 8))
	for axis := 0; axis < 4; axis++ {
		dims := [][]int{{40, 17, 17, 5}, {40, 17, 17, 5}, {40, 17, 17, 5}} // large enough to split between goroutines
		for i := range dims {
			dims[i][axis] = 2 + i // different sizes on the concatenated axis
		}
		exec := graph.MustNewExec(backend(t), func(xs []*graph.Node) *graph.Node { return graph.Concatenate(xs, axis) })
		var in []any
		for _, d := range dims {
			in = append(in, tensors.FromFlatDataAndDimensions(randVec32r(r, prod(d)), d...))
		}
		run := func(fast bool) []float32 {
			fastConcat.on.Store(fast)
			defer fastConcat.on.Store(true)
			return tensors.MustCopyFlatData[float32](exec.MustExec(in...)[0])
		}
		stock := run(false)
		before := fastConcat.calls.Load()
		fast := run(true)
		if fastConcat.calls.Load() == before {
			t.Errorf("axis %d: the fast Concatenate did not run", axis)
		}
		for i := range stock {
			if fast[i] != stock[i] {
				t.Errorf("axis %d: element %d is %g, stock %g", axis, i, fast[i], stock[i])
				break
			}
		}
	}
}

// requireFast fails the test when a fast executor is missing, unless the
// stock executors were asked for (LATENTEDIT_CPU_KERNELS=stock).
func requireFast(t *testing.T, installed bool, what string) {
	t.Helper()
	if stockKernelsOnly() {
		t.Skipf("%s=stock: %s not installed on purpose", EnvKernels, what)
	}
	if !installed {
		t.Fatalf("%s not installed: %s", what, simplegoHooks.reason)
	}
}

// TestFastSliceMatchesStock compares the fast Slice with simplego's on
// slices of every kind: whole trailing axes, strided, strided last axis,
// single elements, the kernel taps of a convolution.
func TestFastSliceMatchesStock(t *testing.T) {
	requireFast(t, fastSlice.installed, "fast Slice")
	r := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		name   string
		dims   []int
		ranges []graph.SliceAxisSpec
	}{
		{"rows", []int{300, 200}, []graph.SliceAxisSpec{graph.AxisRange(10, 290), graph.AxisRange()}},
		{"columns", []int{300, 200}, []graph.SliceAxisSpec{graph.AxisRange(), graph.AxisRange(3, 150)}},
		{"conv tap s1", []int{8, 34, 34, 16}, []graph.SliceAxisSpec{graph.AxisRange(), graph.AxisRange(1, 33), graph.AxisRange(2, 34), graph.AxisRange()}},
		{"conv tap s2", []int{8, 34, 34, 3}, []graph.SliceAxisSpec{graph.AxisRange(), graph.AxisRange(3, 34).Stride(2), graph.AxisRange(0, 31).Stride(2), graph.AxisRange()}},
		{"strided last axis", []int{40, 50, 60}, []graph.SliceAxisSpec{graph.AxisRange(1, 39), graph.AxisRange(), graph.AxisRange(1, 60).Stride(3)}},
		{"one element", []int{4, 5}, []graph.SliceAxisSpec{graph.AxisRange(2, 3), graph.AxisRange(4, 5)}},
		{"vector", []int{100000}, []graph.SliceAxisSpec{graph.AxisRange(7, 99999).Stride(5)}},
	} {
		exec := graph.MustNewExec(backend(t), func(x *graph.Node) *graph.Node { return graph.Slice(x, tc.ranges...) })
		x := tensors.FromFlatDataAndDimensions(randVec32r(r, prod(tc.dims)), tc.dims...)
		run := func(fast bool) []float32 {
			fastSlice.on.Store(fast)
			defer fastSlice.on.Store(true)
			return tensors.MustCopyFlatData[float32](exec.MustExec(x)[0])
		}
		stock := run(false)
		before := fastSlice.calls.Load()
		fast := run(true)
		if fastSlice.calls.Load() == before {
			t.Errorf("%s: the fast Slice did not run", tc.name)
		}
		if len(fast) != len(stock) {
			t.Fatalf("%s: %d elements, stock %d", tc.name, len(fast), len(stock))
		}
		for i := range stock {
			if fast[i] != stock[i] {
				t.Errorf("%s: element %d is %g, stock %g", tc.name, i, fast[i], stock[i])
				break
			}
		}
	}
}

func randVec32r(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// maxRelDiff is max |a-b| / max |b|.
func maxRelDiff(a, b []float32) float64 {
	var d, m float64
	for i := range b {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		m = math.Max(m, math.Abs(float64(b[i])))
	}
	return d / math.Max(m, 1e-30)
}
