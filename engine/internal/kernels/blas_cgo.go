//go:build cgo && !noblas

package kernels

// The native half of the fast CPU matmuls (see fastdot.go): an sgemm from
// oneDNN (Debian libdnnl2) or, failing that, OpenBLAS (libopenblas0). The
// library is opened at run time with dlopen, so building needs only libc (no
// headers, no -l flags), and a machine with neither library runs the pure-Go
// matmuls instead of failing to start.
//
// Why oneDNN first: on our 2-core Xeon (AVX-512) its JIT sgemm ran our
// convolution-shaped products 3–5× faster than Debian's OpenBLAS 0.3.21
// (docs/performance.md has the table); PyTorch's convolutions use the same
// library.

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>

typedef void (*cblas_sgemm_fn)(int order, int transA, int transB, int m, int n, int k,
	float alpha, const float *a, int lda, const float *b, int ldb,
	float beta, float *c, int ldc);
typedef void (*omp_set_fn)(int);
typedef int (*omp_get_fn)(void);
typedef int (*dnnl_sgemm_fn)(char transA, char transB, int64_t m, int64_t n, int64_t k,
	float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
	float beta, float *c, int64_t ldc);
typedef void (*set_threads_fn)(int);

static void *lib_open(const char *name) { return dlopen(name, RTLD_NOW | RTLD_LOCAL); }
static void *lib_sym(void *h, const char *name) { return dlsym(h, name); }

// CBLAS constants: CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112.
static int call_cblas(void *f, int transA, int transB, int m, int n, int k,
	const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
	((cblas_sgemm_fn)f)(101, transA ? 112 : 111, transB ? 112 : 111, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
	return 0;
}
// dnnl_sgemm is row-major; it returns a dnnl_status_t, 0 on success. It
// first sets the calling thread's OpenMP team size to threads (see ompThreads).
static int call_dnnl(void *f, void *omp_set, void *omp_get, int threads, int transA, int transB, int m, int n, int k,
	const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
	if (threads > 0 && omp_set && omp_get && ((omp_get_fn)omp_get)() != threads) ((omp_set_fn)omp_set)(threads);
	return ((dnnl_sgemm_fn)f)(transA ? 'T' : 'N', transB ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}
static void call_set_threads(void *f, int n) { ((set_threads_fn)f)(n); }
static int call_get_threads(void *f) { return ((int (*)(void))f)(); }
*/
import "C"

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// gemmLib is one native sgemm.
type gemmLib struct {
	name  string         // library file
	sgemm unsafe.Pointer // cblas_sgemm or dnnl_sgemm
	dnnl  bool           // dnnl_sgemm: threads itself (OpenMP); else cblas, run single-threaded
	// omp_set_num_threads and omp_get_max_threads of the OpenMP runtime
	// oneDNN loaded (nil for OpenBLAS)
	ompSet, ompGet unsafe.Pointer
	// openblas_get_num_threads, for tests (nil for oneDNN)
	getThreads unsafe.Pointer
}

// gemmLibraries are tried in order: oneDNN, then OpenBLAS — never the
// reference libblas3, whose sgemm is slower than the pure-Go one.
var gemmLibraries = []struct{ file, symbol string }{
	{"libdnnl.so.2", "dnnl_sgemm"},
	{"libopenblas.so.0", "cblas_sgemm"},
	{"libopenblas.so", "cblas_sgemm"},
}

var blas struct {
	once   sync.Once
	libs   []*gemmLib // every library found, in gemmLibraries order
	active atomic.Pointer[gemmLib]
}

// openBLAS opens the native libraries once and reports the name of the one
// used, or "" when none could be opened.
func openBLAS() string {
	blas.once.Do(func() {
		haveCBLAS := false
		for _, l := range gemmLibraries {
			if l.symbol == "cblas_sgemm" && haveCBLAS {
				continue // the same OpenBLAS under another name
			}
			if l.symbol == "dnnl_sgemm" && os.Getenv(EnvKernels) == "openblas" {
				continue
			}
			cname := C.CString(l.file)
			h := C.lib_open(cname)
			C.free(unsafe.Pointer(cname))
			if h == nil {
				continue
			}
			sym := func(s string) unsafe.Pointer {
				cs := C.CString(s)
				defer C.free(unsafe.Pointer(cs))
				return C.lib_sym(h, cs)
			}
			if f := sym(l.symbol); f != nil {
				g := &gemmLib{name: l.file, sgemm: f, dnnl: l.symbol == "dnnl_sgemm"}
				if g.dnnl {
					g.ompSet, g.ompGet = sym("omp_set_num_threads"), sym("omp_get_max_threads")
				} else {
					// OpenBLAS runs single-threaded (see sgemm), set here,
					// before any call can start: a caller that set it on
					// first use let concurrent callers run split blocks on
					// the multi-threaded pool meanwhile.
					if st := sym("openblas_set_num_threads"); st != nil {
						C.call_set_threads(st, 1)
					}
					g.getThreads = sym("openblas_get_num_threads")
					haveCBLAS = true
				}
				blas.libs = append(blas.libs, g)
			}
		}
		if len(blas.libs) > 0 {
			blas.active.Store(blas.libs[0])
		}
	})
	if g := blas.active.Load(); g != nil {
		return g.name
	}
	return ""
}

// ompUserThreads: the user chose OpenMP's team size, which libgomp read
// from the environment itself.
var ompUserThreads = os.Getenv("OMP_NUM_THREADS") != ""

// ompThreads is the OpenMP team size every call into oneDNN sets on its
// calling thread before running: GOMAXPROCS, unless the user chose
// OMP_NUM_THREADS (0: leave it). The size is a per-thread setting, and Go
// may make a call from any of its threads, so it is set per call (when it
// differs) — never through os.Setenv, which in a cgo process races with C
// code reading the environment.
func ompThreads() C.int {
	if ompUserThreads {
		return 0
	}
	return C.int(runtime.GOMAXPROCS(0))
}

// threads is the library's own thread count (OpenBLAS only; -1 otherwise).
func (g *gemmLib) threads() int {
	if g.getThreads == nil {
		return -1
	}
	return int(C.call_get_threads(g.getThreads))
}

// gemmName is the active library and function, for CPUKernels.
func gemmName() string {
	g := blas.active.Load()
	if g.dnnl {
		return g.name + " dnnl_sgemm"
	}
	return g.name + " cblas_sgemm"
}

// sgemm computes c = op(a)·op(b) for row-major c [m, n], where op(a) is
// [m, k] (a stored [m, k], or [k, m] when transA) and op(b) is [k, n] (b
// stored [k, n], or [n, k] when transB). openBLAS must have succeeded.
//
// oneDNN parallelises one call itself. OpenBLAS is run single-threaded: its
// own worker threads spin for a while after each call, and on our 2-core
// machines that spinning took a core from the pure-Go ops that run between
// the matmuls. Instead a large product is cut into GOMAXPROCS blocks of rows
// (or of columns, when there are more of those), each computed by one sgemm
// call on its own goroutine.
func sgemm(transA, transB bool, m, n, k int, a, b, c []float32) error {
	if m < 0 || n < 0 || k < 0 || len(c) < m*n {
		return fmt.Errorf("engine: sgemm(%d×%d×%d) with an output of %d elements", m, n, k, len(c))
	}
	if m == 0 || n == 0 {
		return nil
	}
	if k == 0 {
		clear(c[:m*n])
		return nil
	}
	g := blas.active.Load()
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	p := runtime.GOMAXPROCS(0)
	if g.dnnl || p <= 1 || m*n*k < 1<<20 || (m < 2*p && n < 2*p) {
		return g.block(transA, transB, m, n, k, a, lda, b, ldb, c, n)
	}
	var wg sync.WaitGroup
	errs := make([]error, p)
	for i := 0; i < p; i++ {
		wg.Add(1)
		if m >= n {
			lo, hi := i*m/p, (i+1)*m/p
			aOff := lo * k
			if transA {
				aOff = lo
			}
			go func() {
				defer wg.Done()
				errs[i] = g.block(transA, transB, hi-lo, n, k, a[aOff:], lda, b, ldb, c[lo*n:], n)
			}()
		} else {
			lo, hi := i*n/p, (i+1)*n/p
			bOff := lo
			if transB {
				bOff = lo * k
			}
			go func() {
				defer wg.Done()
				errs[i] = g.block(transA, transB, m, hi-lo, k, a, lda, b[bOff:], ldb, c[lo:], n)
			}()
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// block is one sgemm call on row-major operands with leading dimensions
// lda, ldb, ldc.
func (g *gemmLib) block(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) error {
	if m == 0 || n == 0 {
		return nil
	}
	if err := checkGemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc); err != nil {
		return fmt.Errorf("engine: %s: %w", g.name, err)
	}
	pa, pb, pc := (*C.float)(unsafe.Pointer(&a[0])), (*C.float)(unsafe.Pointer(&b[0])), (*C.float)(unsafe.Pointer(&c[0]))
	var status C.int
	if g.dnnl {
		status = C.call_dnnl(g.sgemm, g.ompSet, g.ompGet, ompThreads(), cbool(transA), cbool(transB), C.int(m), C.int(n), C.int(k), pa, C.int(lda), pb, C.int(ldb), pc, C.int(ldc))
	} else {
		status = C.call_cblas(g.sgemm, cbool(transA), cbool(transB), C.int(m), C.int(n), C.int(k), pa, C.int(lda), pb, C.int(ldb), pc, C.int(ldc))
	}
	if status != 0 {
		return fmt.Errorf("engine: %s sgemm(%d×%d×%d) failed with status %d", g.name, m, n, k, int(status))
	}
	return nil
}

// checkGemm refuses, before any pointer reaches C, an sgemm whose operands
// are shorter than its dimensions and leading dimensions reach, or whose
// sizes do not fit the C int the libraries take.
func checkGemm(transA, transB bool, m, n, k, la, lda, lb, ldb, lc, ldc int) error {
	ar, ac := m, k // op(a) is m×k, stored [m, k] or, transposed, [k, m]
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	// span is the elements a rows×cols matrix with leading dimension ld reaches.
	span := func(rows, cols, ld int) int { return (rows-1)*ld + cols }
	switch {
	case m < 1 || n < 1 || k < 1 || m > math.MaxInt32 || n > math.MaxInt32 || k > math.MaxInt32 ||
		lda > math.MaxInt32 || ldb > math.MaxInt32 || ldc > math.MaxInt32:
		return fmt.Errorf("sgemm(%d×%d×%d) out of range", m, n, k)
	case lda < ac || ldb < bc || ldc < n:
		return fmt.Errorf("sgemm(%d×%d×%d): leading dimensions %d, %d, %d below the rows' lengths %d, %d, %d", m, n, k, lda, ldb, ldc, ac, bc, n)
	case la < span(ar, ac, lda) || lb < span(br, bc, ldb) || lc < span(m, n, ldc):
		return fmt.Errorf("sgemm(%d×%d×%d): operands of %d, %d and %d elements, need %d, %d and %d",
			m, n, k, la, lb, lc, span(ar, ac, lda), span(br, bc, ldb), span(m, n, ldc))
	}
	return nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
