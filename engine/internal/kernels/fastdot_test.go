//go:build cgo && !noblas

package kernels

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestFastDotInstalled fails where neither oneDNN nor OpenBLAS is installed
// (scripts/test.sh installs them) or simplego's internals moved: either way the CPU would
// silently run 5–20× slower.
func TestFastDotInstalled(t *testing.T) {
	if stockKernelsOnly() {
		t.Logf("%s=stock: %s", EnvKernels, CPUKernels())
		return
	}
	if !fastDot.installed {
		t.Fatalf("native DotGeneral not installed: %s", fastDot.reason)
	}
	t.Log(CPUKernels())
}

// TestFastDotMatchesStock runs DotGenerals of every layout our graphs use
// (and some they do not) through sgemm and through simplego's own executor,
// and compares the results; and MatMul with its gradient (three DotGenerals
// of three layouts), the way every conv and dense layer uses it.
func TestFastDotMatchesStock(t *testing.T) {
	requireFast(t, fastDot.installed, "native DotGeneral ("+fastDot.reason+")")
	defer blas.active.Store(blas.active.Load())
	for _, lib := range blas.libs { // oneDNN and OpenBLAS, where installed
		blas.active.Store(lib)
		t.Run(lib.name, testFastDotLayouts)
	}
}

func testFastDotLayouts(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name   string
		a, b   []int
		ac, ab []int
		bc, bb []int
		sgemm  bool // whether sgemm can take the layout
	}{
		{"MK·KN", []int{37, 19}, []int{19, 23}, []int{1}, nil, []int{0}, nil, true},
		{"MK·NK", []int{37, 19}, []int{23, 19}, []int{1}, nil, []int{1}, nil, true},
		{"KM·KN", []int{19, 37}, []int{19, 23}, []int{0}, nil, []int{0}, nil, true},
		{"KM·NK", []int{19, 37}, []int{23, 19}, []int{0}, nil, []int{1}, nil, true},
		{"large MK·KN, split in rows", []int{300, 200}, []int{200, 150}, []int{1}, nil, []int{0}, nil, true},
		{"large KM·KN, split in rows", []int{300, 400}, []int{300, 20}, []int{0}, nil, []int{0}, nil, true},
		{"large MK·NK, split in columns", []int{40, 300}, []int{500, 300}, []int{1}, nil, []int{1}, nil, true},
		{"large KM·NK, split in columns", []int{300, 40}, []int{500, 300}, []int{0}, nil, []int{1}, nil, true},
		{"vector", []int{1, 64}, []int{64, 1}, []int{1}, nil, []int{0}, nil, true},
		{"batched", []int{5, 7, 11}, []int{5, 11, 3}, []int{2}, []int{0}, []int{1}, []int{0}, true},
		{"batched KM·NK", []int{5, 11, 7}, []int{5, 3, 11}, []int{1}, []int{0}, []int{2}, []int{0}, true},
		{"two contracting axes", []int{6, 4, 5}, []int{4, 5, 7}, []int{1, 2}, nil, []int{0, 1}, nil, true},
		{"split cross axes", []int{3, 6, 5}, []int{5, 7}, []int{2}, nil, []int{0}, nil, true},
		{"contracting in the middle", []int{3, 6, 5}, []int{6, 7}, []int{1}, nil, []int{0}, nil, false},
		{"batch axis last", []int{7, 11, 5}, []int{11, 3, 5}, []int{1}, []int{2}, []int{0}, []int{2}, false},
	} {
		wantCalls := 0
		if tc.sgemm {
			wantCalls = 1
		}
		exec := graph.MustNewExec(backend(t), func(a, b *graph.Node) []*graph.Node {
			return []*graph.Node{graph.DotGeneral(a, tc.ac, tc.ab, b, tc.bc, tc.bb)}
		})
		a := tensors.FromFlatDataAndDimensions(randVec32r(r, prod(tc.a)), tc.a...)
		b := tensors.FromFlatDataAndDimensions(randVec32r(r, prod(tc.b)), tc.b...)
		run := func(fast bool) [][]float32 {
			fastDot.on.Store(fast)
			defer fastDot.on.Store(true)
			var out [][]float32
			for _, o := range exec.MustExec(a, b) {
				out = append(out, tensors.MustCopyFlatData[float32](o))
			}
			return out
		}
		stock := run(false)
		before := fastDot.calls.Load()
		fast := run(true)
		calls := fastDot.calls.Load() - before
		for i := range stock {
			if d := maxRelDiff(fast[i], stock[i]); !(d < 1e-5) {
				t.Errorf("%s: output %d differs from the stock DotGeneral by %g (relative)", tc.name, i, d)
			}
		}
		if calls != int64(wantCalls) {
			t.Errorf("%s: %d DotGenerals ran through sgemm, want %d", tc.name, calls, wantCalls)
		}
	}
}
