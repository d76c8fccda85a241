//go:build cgo && !noblas && linux

package kernels

import (
	"errors"
	"strings"
	"testing"
)

// The unsafe edges of the cgo layer, each tried from the outside: operands
// that do not match a plan, more geometries than the plan cache keeps,
// OpenBLAS's thread count. A refused geometry and dropped graphs are tried
// through engine's graphs (engine/kernels_test.go).

// TestDNNLConvRefusesWrongLengths: an operand shorter or longer than the
// geometry says is an error before any pointer reaches oneDNN.
func TestDNNLConvRefusesWrongLengths(t *testing.T) {
	requireFast(t, fastConv.installed, "oneDNN ConvGeneral ("+fastConv.reason+")")
	for _, g := range threadTestGeoms[:5] {
		a, b, n := convOperands(g, 0)
		for i, tc := range []struct{ a, b, out []float32 }{
			{a[:len(a)-1], b, make([]float32, n)},
			{a, b[:len(b)-1], make([]float32, n)},
			{a, b, make([]float32, n-1)},
			{a, b, make([]float32, n+1)},
			{nil, b, make([]float32, n)},
		} {
			err := dnnlConv(g, tc.a, tc.b, tc.out)
			if err == nil || !strings.Contains(err.Error(), "elements, want") {
				t.Errorf("kind %d, case %d: error %v, want one naming the lengths", g.kind, i, err)
			}
		}
		if err := checkConv(g, 0); err != nil { // and the right lengths still work
			t.Error(err)
		}
	}
}

// TestSgemmRefusesShortOperands: every library's sgemm is refused in Go when
// an operand is shorter than its dimensions and leading dimensions reach.
func TestSgemmRefusesShortOperands(t *testing.T) {
	requireFast(t, fastDot.installed, "native DotGeneral ("+fastDot.reason+")")
	const m, n, k = 300, 200, 150 // large enough for OpenBLAS's split path
	for _, lib := range blas.libs {
		for _, trans := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			a, b, c := randVec32(m*k), randVec32(k*n + 1)[1:], make([]float32, m*n)
			for i, tc := range []struct{ a, b, c []float32 }{
				{a[:m*k-1], b, c}, {a, b[:k*n-1], c}, {a, b, c[:m*n-1]},
			} {
				err := lib.block(trans[0], trans[1], m, n, k, tc.a, ld(trans[0], k, m), tc.b, ld(trans[1], n, k), tc.c, n)
				if err == nil || !strings.Contains(err.Error(), "need") {
					t.Errorf("%s trans %v case %d: error %v, want one naming the lengths", lib.name, trans, i, err)
				}
			}
			if err := lib.block(trans[0], trans[1], m, n, k, a, ld(trans[0], k, m), b, ld(trans[1], n, k), c, n); err != nil {
				t.Errorf("%s trans %v: %v", lib.name, trans, err)
			}
		}
	}
	if err := sgemm(false, false, 4, 4, 4, randVec32(16), randVec32(17)[1:], make([]float32, 15)); err == nil {
		t.Error("sgemm with an output of 15 elements for 4×4 succeeded")
	}
	for _, tc := range []struct{ m, n, k, lda, ldb, ldc int }{
		{4, 4, 4, 3, 4, 4}, {4, 4, 4, 4, 3, 4}, {4, 4, 4, 4, 4, 3}, {1 << 31, 1, 1, 1, 1, 1}, {0, 4, 4, 4, 4, 4},
	} {
		if err := checkGemm(false, false, tc.m, tc.n, tc.k, 1<<20, tc.lda, 1<<20, tc.ldb, 1<<20, tc.ldc); err == nil {
			t.Errorf("checkGemm%+v accepted", tc)
		}
	}
}

// ld is the leading dimension of a row-major matrix stored [rows, cols], or
// transposed [cols, rows].
func ld(trans bool, cols, rows int) int {
	if trans {
		return rows
	}
	return cols
}

// TestOpenBLASSingleThreaded: OpenBLAS's pool is single-threaded from the
// moment the library is opened, before any sgemm: split calls from several
// goroutines never meet a multi-threaded pool.
func TestOpenBLASSingleThreaded(t *testing.T) {
	requireFast(t, fastDot.installed, "native DotGeneral ("+fastDot.reason+")")
	found := false
	for _, lib := range blas.libs {
		if lib.dnnl {
			continue
		}
		found = true
		if n := lib.threads(); n != 1 {
			t.Errorf("%s runs %d threads, want 1", lib.name, n)
		}
	}
	if !found {
		t.Fatal("OpenBLAS not opened (scripts/test.sh installs libopenblas0)")
	}
}

// TestDNNLPlanCacheIsBounded: past dnnlPlanCap geometries the least recently
// used plans are destroyed, and a geometry met again gets a new plan that
// computes the same values.
func TestDNNLPlanCacheIsBounded(t *testing.T) {
	requireFast(t, fastConv.installed, "oneDNN ConvGeneral ("+fastConv.reason+")")
	var old int
	setLocked(func() { old, dnnlPlanCap = dnnlPlanCap, 3 })
	defer setLocked(func() { dnnlPlanCap = old })
	for round := 0; round < 2; round++ {
		for i, g := range threadTestGeoms {
			if err := checkConv(g, round); err != nil {
				t.Fatal(err)
			}
			if n := dnnlPlans(); n > 3 {
				t.Fatalf("round %d, geometry %d: %d plans kept, cap 3", round, i, n)
			}
		}
	}
	if dnnlImpl(threadTestGeoms[0]) != "" || dnnlImpl(threadTestGeoms[len(threadTestGeoms)-1]) == "" {
		t.Error("the cache did not keep the most recently used plans only")
	}
}

// setLocked changes the plan cache's settings between executions.
func setLocked(f func()) {
	dnnl.mu.Lock()
	defer dnnl.mu.Unlock()
	f()
}

// TestDNNLRefusedGeometryIsAnError: dnnlConv of a geometry oneDNN refused
// returns errDNNLRefused (the executor then runs simplego's convolution;
// engine/kernels_test.go checks that through a graph).
func TestDNNLRefusedGeometryIsAnError(t *testing.T) {
	requireFast(t, fastConv.installed, "oneDNN ConvGeneral ("+fastConv.reason+")")
	g := convGeom(1, 3, 13, 5, 9, 3, 2, 1) // used by no other test
	defer RefuseConvs(func(kind, c, f int) bool { return kind == 1 && c == 5 && f == 9 })()
	a, b, m := convOperands(g, 0)
	if err := dnnlConv(g, a, b, make([]float32, m)); !errors.Is(err, errDNNLRefused) {
		t.Errorf("dnnlConv of a refused geometry: %v, want errDNNLRefused", err)
	}
}
