//go:build cgo && !noblas

package engine

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
// dnnl_sgemm is row-major; it returns a dnnl_status_t, 0 on success.
static int call_dnnl(void *f, int transA, int transB, int m, int n, int k,
	const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
	return ((dnnl_sgemm_fn)f)(transA ? 'T' : 'N', transB ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}
static void call_set_threads(void *f, int n) { ((set_threads_fn)f)(n); }
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"
)

// gemmLib is one native sgemm.
type gemmLib struct {
	name       string         // library file
	sgemm      unsafe.Pointer // cblas_sgemm or dnnl_sgemm
	dnnl       bool           // dnnl_sgemm: threads itself (OpenMP); else cblas, run single-threaded
	setThreads unsafe.Pointer // openblas_set_num_threads, for cblas
}

// gemmLibraries are tried in order: oneDNN, then OpenBLAS — never the
// reference libblas3, whose sgemm is slower than the pure-Go one.
var gemmLibraries = []struct{ file, symbol string }{
	{"libdnnl.so.2", "dnnl_sgemm"},
	{"libopenblas.so.0", "cblas_sgemm"},
	{"libopenblas.so", "cblas_sgemm"},
}

var blas struct {
	once      sync.Once
	libs      []*gemmLib // every library found, in gemmLibraries order
	active    atomic.Pointer[gemmLib]
	threadsOK atomic.Bool
}

// openBLAS opens the native libraries once and reports the name of the one
// used, or "" when none could be opened.
func openBLAS() string {
	blas.once.Do(func() {
		// oneDNN threads with OpenMP, whose team size is read from the
		// environment when libgomp starts: match Go's parallelism unless the
		// user chose otherwise.
		if os.Getenv("OMP_NUM_THREADS") == "" {
			os.Setenv("OMP_NUM_THREADS", strconv.Itoa(runtime.GOMAXPROCS(0)))
		}
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
				if !g.dnnl {
					g.setThreads = sym("openblas_set_num_threads")
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
	if !blas.threadsOK.Swap(true) && g.setThreads != nil {
		C.call_set_threads(g.setThreads, 1)
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
	pa, pb, pc := (*C.float)(unsafe.Pointer(&a[0])), (*C.float)(unsafe.Pointer(&b[0])), (*C.float)(unsafe.Pointer(&c[0]))
	var status C.int
	if g.dnnl {
		status = C.call_dnnl(g.sgemm, cbool(transA), cbool(transB), C.int(m), C.int(n), C.int(k), pa, C.int(lda), pb, C.int(ldb), pc, C.int(ldc))
	} else {
		status = C.call_cblas(g.sgemm, cbool(transA), cbool(transB), C.int(m), C.int(n), C.int(k), pa, C.int(lda), pb, C.int(ldb), pc, C.int(ldc))
	}
	if status != 0 {
		return fmt.Errorf("engine: %s sgemm(%d×%d×%d) failed with status %d", g.name, m, n, k, int(status))
	}
	return nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
