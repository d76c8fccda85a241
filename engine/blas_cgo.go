//go:build cgo && !noblas

package engine

// The OpenBLAS half of the fast CPU path (see fastdot.go): the library is
// opened at run time with dlopen, so building needs only libc (no BLAS
// headers, no -lopenblas), and a machine without libopenblas0 runs the
// pure-Go matmuls instead of failing to start.

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

typedef void (*sgemm_fn)(int order, int transA, int transB, int m, int n, int k,
	float alpha, const float *a, int lda, const float *b, int ldb,
	float beta, float *c, int ldc);
typedef void (*set_threads_fn)(int);

static void *blas_open(const char *name) { return dlopen(name, RTLD_NOW | RTLD_LOCAL); }
static void *blas_sym(void *h, const char *name) { return dlsym(h, name); }

// CBLAS constants: CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112.
static void blas_sgemm(void *f, int transA, int transB, int m, int n, int k,
	const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
	((sgemm_fn)f)(101, transA ? 112 : 111, transB ? 112 : 111, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}
static void blas_set_threads(void *f, int n) { ((set_threads_fn)f)(n); }
*/
import "C"

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// blasLibraries are tried in order; only OpenBLAS (Debian's libopenblas0-*),
// never the reference libblas3, whose sgemm is slower than the pure-Go one.
var blasLibraries = []string{"libopenblas.so.0", "libopenblas.so"}

var blas struct {
	once       sync.Once
	sgemm      unsafe.Pointer
	setThreads unsafe.Pointer
	name       string
	threads    atomic.Int32
}

// openBLAS loads OpenBLAS once and reports the library's name, or "" when none
// could be opened.
func openBLAS() string {
	blas.once.Do(func() {
		for _, lib := range blasLibraries {
			cname := C.CString(lib)
			h := C.blas_open(cname)
			C.free(unsafe.Pointer(cname))
			if h == nil {
				continue
			}
			sym := func(s string) unsafe.Pointer {
				cs := C.CString(s)
				defer C.free(unsafe.Pointer(cs))
				return C.blas_sym(h, cs)
			}
			if f := sym("cblas_sgemm"); f != nil {
				blas.sgemm, blas.name = f, lib
				blas.setThreads = sym("openblas_set_num_threads")
				return
			}
		}
	})
	return blas.name
}

// sgemm computes c = op(a)·op(b) for row-major c [m, n], where op(a) is
// [m, k] (a stored [m, k], or [k, m] when transA) and op(b) is [k, n] (b
// stored [k, n], or [n, k] when transB). openBLAS must have succeeded.
//
// OpenBLAS itself runs single-threaded: its own worker threads spin for a
// while after each call, and on our 2-core machines that spinning took a
// core from the pure-Go ops that run between the matmuls. Instead a large
// product is cut into GOMAXPROCS blocks of rows (or of columns, when there
// are more of those), each computed by one sgemm call on its own goroutine.
func sgemm(transA, transB bool, m, n, k int, a, b, c []float32) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		clear(c[:m*n])
		return
	}
	if blas.threads.Swap(1) != 1 && blas.setThreads != nil {
		C.blas_set_threads(blas.setThreads, 1)
	}
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	p := runtime.GOMAXPROCS(0)
	if p <= 1 || m*n*k < 1<<20 || (m < 2*p && n < 2*p) {
		gemmBlock(transA, transB, m, n, k, a, lda, b, ldb, c, n)
		return
	}
	var wg sync.WaitGroup
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
				gemmBlock(transA, transB, hi-lo, n, k, a[aOff:], lda, b, ldb, c[lo*n:], n)
			}()
		} else {
			lo, hi := i*n/p, (i+1)*n/p
			bOff := lo
			if transB {
				bOff = lo * k
			}
			go func() {
				defer wg.Done()
				gemmBlock(transA, transB, m, hi-lo, k, a, lda, b[bOff:], ldb, c[lo:], n)
			}()
		}
	}
	wg.Wait()
}

// gemmBlock is one cblas_sgemm call on row-major operands with leading
// dimensions lda, ldb, ldc.
func gemmBlock(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	C.blas_sgemm(blas.sgemm, cbool(transA), cbool(transB), C.int(m), C.int(n), C.int(k),
		(*C.float)(unsafe.Pointer(&a[0])), C.int(lda), (*C.float)(unsafe.Pointer(&b[0])), C.int(ldb),
		(*C.float)(unsafe.Pointer(&c[0])), C.int(ldc))
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
