package kernels

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestFastBinaryMatchesStock compares the fast Add, Sub, Mul and Max with
// simplego's for every broadcast they take (and one they leave to the stock
// executor), on operands that are parameters and on intermediate results
// whose buffers the executor may write into.
func TestFastBinaryMatchesStock(t *testing.T) {
	requireFast(t, fastBinary.installed, "fast binary ops")
	r := rand.New(rand.NewPCG(11, 12))
	ops := map[string]func(a, b *graph.Node) *graph.Node{"Add": graph.Add, "Sub": graph.Sub, "Mul": graph.Mul, "Max": graph.Max}
	for _, tc := range []struct {
		name string
		a, b []int
		fast bool
	}{
		{"same shape", []int{64, 33, 17}, []int{64, 33, 17}, true},
		{"bias", []int{16, 9, 9, 40}, []int{1, 1, 1, 40}, true},
		{"bias on the left", []int{1, 1, 40}, []int{20, 30, 40}, true},
		{"per-sample factor", []int{64, 100}, []int{64, 1}, true},
		{"scalar", []int{50, 70}, []int{}, true},
		{"scalar on the left", []int{}, []int{50, 70}, true},
		{"outer product", []int{1, 300}, []int{300, 1}, true},
		{"middle axis", []int{8, 1, 30}, []int{8, 20, 30}, true},
		{"latents against support vectors", []int{64, 1, 64}, []int{1, 32, 64}, true},
		{"per-row factor in the middle", []int{6, 20, 1, 1}, []int{6, 20, 7, 16}, true},
		{"both middle", []int{5, 1, 9, 1, 12}, []int{1, 4, 9, 3, 12}, true},
		{"short rows", []int{8, 1, 3}, []int{8, 20, 3}, false},
	} {
		for name, op := range ops {
			exec := graph.MustNewExec(backend(t), func(a, b *graph.Node) []*graph.Node {
				// The second output's operands are intermediate results.
				return []*graph.Node{op(a, b), op(graph.MulScalar(a, 3), graph.AddScalar(b, 1))}
			})
			a := tensors.FromFlatDataAndDimensions(randVec32r(r, prod(tc.a)), tc.a...)
			b := tensors.FromFlatDataAndDimensions(randVec32r(r, prod(tc.b)), tc.b...)
			run := func(fast bool) [][]float32 {
				fastBinary.on.Store(fast)
				defer fastBinary.on.Store(true)
				var out [][]float32
				for _, o := range exec.MustExec(a, b) {
					out = append(out, tensors.MustCopyFlatData[float32](o))
				}
				return out
			}
			stock := run(false)
			before := fastBinary.calls.Load()
			fast := run(true)
			if ran := fastBinary.calls.Load() > before+2; ran != tc.fast { // +2: the MulScalar and AddScalar
				t.Errorf("%s %s: fast executor ran: %v, want %v", name, tc.name, ran, tc.fast)
			}
			for i := range stock {
				for j := range stock[i] {
					if fast[i][j] != stock[i][j] {
						t.Errorf("%s %s: output %d element %d is %g, stock %g", name, tc.name, i, j, fast[i][j], stock[i][j])
						break
					}
				}
			}
		}
	}
}

// TestFastGatherMatchesStock compares the row Gather and its gradient (a row
// ScatterSum, with repeated indices) with simplego's executors.
func TestFastGatherMatchesStock(t *testing.T) {
	requireFast(t, fastGather.installed, "fast Gather/ScatterSum")
	r := rand.New(rand.NewPCG(13, 14))
	const rows, c, n = 300, 17, 2000
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(r.IntN(rows))
	}
	exec := graph.MustNewExec(backend(t), func(x, ix *graph.Node) []*graph.Node {
		y := graph.Gather(x, ix)
		w := graph.Sin(graph.IotaFull(y.Graph(), y.Shape()))
		return []*graph.Node{y, graph.Gradient(graph.ReduceAllSum(graph.Mul(y, w)), x)[0]}
	})
	x := tensors.FromFlatDataAndDimensions(randVec32r(r, rows*c), rows, c)
	ix := tensors.FromFlatDataAndDimensions(idx, n, 1)
	run := func(fast bool) [][]float32 {
		fastGather.on.Store(fast)
		defer fastGather.on.Store(true)
		var out [][]float32
		for _, o := range exec.MustExec(x, ix) {
			out = append(out, tensors.MustCopyFlatData[float32](o))
		}
		return out
	}
	stock := run(false)
	before := fastGather.calls.Load()
	fast := run(true)
	if got := fastGather.calls.Load() - before; got != 2 {
		t.Errorf("%d fast Gather/ScatterSum calls, want 2", got)
	}
	for i := range stock {
		for j := range stock[i] {
			if fast[i][j] != stock[i][j] {
				t.Errorf("output %d element %d is %g, stock %g", i, j, fast[i][j], stock[i][j])
				break
			}
		}
	}
}

// TestFastBroadcastMatchesStock compares the fast BroadcastInDim (nearest
// upsampling, per-pixel and per-channel broadcasts, scalars), Sign and Tanh
// with simplego's executors.
func TestFastBroadcastMatchesStock(t *testing.T) {
	requireFast(t, fastBroadcast.installed, "fast BroadcastInDim/Sign")
	r := rand.New(rand.NewPCG(15, 16))
	for _, tc := range []struct {
		name     string
		in, out  []int
		viaShape []int // x is reshaped to this before BroadcastToDims
	}{
		{"upsample", []int{4, 6, 6, 16}, []int{4, 6, 2, 6, 2, 16}, []int{4, 6, 1, 6, 1, 16}},
		{"per pixel", []int{8, 9, 9, 1}, []int{8, 9, 9, 40}, nil},
		{"per channel", []int{40}, []int{8, 9, 9, 40}, []int{1, 1, 1, 40}},
		{"per sample", []int{64}, []int{64, 100}, []int{64, 1}},
		{"middle", []int{8, 1, 30}, []int{8, 20, 30}, nil},
		{"scalar", []int{}, []int{30, 50}, []int{1, 1}},
		{"large", []int{64, 32, 32, 3}, []int{64, 32, 32, 3}, nil},
	} {
		exec := graph.MustNewExec(backend(t), func(x *graph.Node) []*graph.Node {
			if tc.viaShape != nil {
				x = graph.Reshape(x, tc.viaShape...)
			}
			y := graph.BroadcastToDims(x, tc.out...)
			return []*graph.Node{y, graph.Sign(graph.Sub(y, graph.Const(y.Graph(), float32(0.1)))), graph.Tanh(graph.MulScalar(y, 3))}
		})
		v := randVec32r(r, prod(tc.in))
		if len(v) > 3 {
			v[0], v[1] = 0, float32(math.NaN())
		}
		x := tensors.FromFlatDataAndDimensions(v, tc.in...)
		run := func(fast bool) [][]float32 {
			fastBroadcast.on.Store(fast)
			defer fastBroadcast.on.Store(true)
			var out [][]float32
			for _, o := range exec.MustExec(x) {
				out = append(out, tensors.MustCopyFlatData[float32](o))
			}
			return out
		}
		stock := run(false)
		before := fastBroadcast.calls.Load()
		fast := run(true)
		if fastBroadcast.calls.Load()-before < 3 {
			t.Errorf("%s: the fast BroadcastInDim, Sign and Tanh did not all run", tc.name)
		}
		for i := range stock {
			for j := range stock[i] {
				same := fast[i][j] == stock[i][j] || (math.IsNaN(float64(fast[i][j])) && math.IsNaN(float64(stock[i][j])))
				if !same {
					t.Errorf("%s: output %d element %d is %g, stock %g", tc.name, i, j, fast[i][j], stock[i][j])
					break
				}
			}
		}
	}
}

// TestFastReduceSumMatchesStock compares the fast ReduceSum with simplego's
// over leading, trailing, middle and all axes: bit for bit (same summation
// order) where axes are left after the reduced ones, to float rounding where
// the reduced axes are the last (several accumulators); those give the same
// bits on one thread and on two. Non-adjacent axes are left to the stock
// executor.
func TestFastReduceSumMatchesStock(t *testing.T) {
	requireFast(t, fastBroadcast.installed, "fast ReduceSum")
	r := rand.New(rand.NewPCG(17, 18))
	for _, tc := range []struct {
		name string
		dims []int
		axes []int
		fast bool
	}{
		{"bias gradient", []int{8, 9, 9, 40}, []int{0, 1, 2}, true},
		{"last axis", []int{64, 100}, []int{1}, true},
		{"middle", []int{8, 20, 30}, []int{1}, true},
		{"first of two", []int{3, 5000}, []int{0}, true},
		{"all", []int{7, 11, 13}, []int{0, 1, 2}, true},
		{"all, long", []int{3, 100003}, []int{0, 1}, true},
		{"two long rows", []int{2, 70001}, []int{1}, true},
		{"many long rows", []int{5, 40000}, []int{1}, true},
		{"not adjacent", []int{8, 20, 30}, []int{0, 2}, false},
	} {
		exact := tc.axes[len(tc.axes)-1] != len(tc.dims)-1
		exec := graph.MustNewExec(backend(t), func(x *graph.Node) *graph.Node { return graph.ReduceSum(x, tc.axes...) })
		x := tensors.FromFlatDataAndDimensions(randVec32r(r, prod(tc.dims)), tc.dims...)
		run := func(fast bool) []float32 {
			fastBroadcast.on.Store(fast)
			defer fastBroadcast.on.Store(true)
			return tensors.MustCopyFlatData[float32](exec.MustExec(x)[0])
		}
		stock := run(false)
		before := fastBroadcast.calls.Load()
		fast := run(true)
		if ran := fastBroadcast.calls.Load() > before; ran != tc.fast {
			t.Errorf("%s: fast ReduceSum ran: %v, want %v", tc.name, ran, tc.fast)
		}
		m := prod(tc.dims) / len(stock)
		for i := range stock {
			// Random values in [-1, 1): a sum of m has rounding error ~ m·2⁻²⁴.
			if d := math.Abs(float64(fast[i] - stock[i])); (exact && d != 0) || d > float64(m)*1e-6 {
				t.Errorf("%s: element %d is %g, stock %g", tc.name, i, fast[i], stock[i])
				break
			}
		}
		if !exact {
			prev := runtime.GOMAXPROCS(1)
			one := run(true)
			runtime.GOMAXPROCS(prev)
			for i := range one {
				if one[i] != fast[i] {
					t.Errorf("%s: element %d is %g on one thread, %g on %d", tc.name, i, one[i], fast[i], prev)
					break
				}
			}
		}
	}
}
