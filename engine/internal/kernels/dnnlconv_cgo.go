//go:build cgo && !noblas

package kernels

// The native half of the fast CPU convolutions (see fastconv.go): oneDNN's
// convolution primitives (forward, backward-data, backward-weights) from
// Debian's libdnnl2, opened at run time with dlopen like the sgemm
// (blas_cgo.go), so building needs neither headers nor -l flags.
//
// No oneDNN header is included: the few functions used are declared here by
// their C signatures, and the two descriptor structs the API fills in
// (dnnl_memory_desc_t, 696 bytes in oneDNN 2.6, and dnnl_convolution_desc_t,
// 5976 bytes) are opaque buffers larger than both. The enum values are
// oneDNN 2.x's (stable across 2.x; oneDNN 3 is libdnnl3 and is not opened).
//
// Activations are NHWC and kernels HWIO, as our graphs keep them. The
// primitive chooses its own kernel layout (format "any"), and the kernel is
// reordered to and from it on each call: kernels are small, and the blocked
// layouts are what oneDNN's JIT convolutions run fastest on.
//
// Threads (docs/engine.md): a oneDNN primitive made in the default
// ("library") scratchpad mode may only run on the OS thread that created it
// — the x64:gemm:jit convolutions take their scratchpad from that thread's
// thread-local pool, and an OpenMP worker of another thread writes through a
// pointer it never set. Go moves a goroutine between OS threads after any cgo
// call, so every primitive here is made in the user scratchpad mode instead:
// each plan owns its scratchpad and passes it with every execution
// (DNNL_ARG_SCRATCHPAD), and a plan runs correctly from whatever thread the
// caller is on. Executions are serialised (one stream, one scratchpad per
// plan). The OpenMP team size is a per-thread setting: each call sets the
// caller's before running. The Go side checks every operand's length against
// the plan's geometry before a pointer reaches C.

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct { int64_t d[128]; } md_t;   // >= sizeof(dnnl_memory_desc_t) (696 in 2.6)
typedef struct { int64_t d[1024]; } cd_t;  // >= sizeof(dnnl_convolution_desc_t) (5976 in 2.6)
typedef struct { int arg; void *mem; } exec_arg_t;

enum {
	MD_SIZE = 696, // sizeof(dnnl_memory_desc_t) in oneDNN 2.x
	F32 = 3, TAG_ANY = 1, FWD_TRAINING = 64, CONV_DIRECT = 1, ENGINE_CPU = 1, STREAM_DEFAULT = 1,
	ARG_SRC = 1, ARG_DST = 17, ARG_WEIGHTS = 33, ARG_DIFF_SRC = 129, ARG_DIFF_DST = 145, ARG_DIFF_WEIGHTS = 161,
	ARG_FROM = 1, ARG_TO = 17, ARG_SCRATCHPAD = 80,
	Q_WEIGHTS_MD = 131, Q_DIFF_WEIGHTS_MD = 132, Q_SCRATCHPAD_MD = 136, Q_IMPL_INFO_STR = 8,
	SCRATCHPAD_USER = 1, // dnnl_scratchpad_mode_user
};

static struct {
	int (*md_by_strides)(md_t*, int, const int64_t*, int, const int64_t*);
	int (*md_by_tag)(md_t*, int, const int64_t*, int, int);
	int (*fwd_init)(cd_t*, int, int, const md_t*, const md_t*, const md_t*, const md_t*, const int64_t*, const int64_t*, const int64_t*);
	int (*bwd_data_init)(cd_t*, int, const md_t*, const md_t*, const md_t*, const int64_t*, const int64_t*, const int64_t*);
	int (*bwd_w_init)(cd_t*, int, const md_t*, const md_t*, const md_t*, const md_t*, const int64_t*, const int64_t*, const int64_t*);
	int (*pd_create)(void**, const void*, const void*, void*, const void*);
	int (*attr_create)(void**);
	int (*attr_destroy)(void*);
	int (*attr_set_scratchpad_mode)(void*, int);
	int (*pd_destroy)(void*);
	const md_t* (*pd_query_md)(const void*, int, int);
	int (*pd_query)(const void*, int, int, void*);
	int (*prim_create)(void**, const void*);
	int (*prim_destroy)(void*);
	int (*prim_execute)(const void*, void*, int, const exec_arg_t*);
	int (*mem_create)(void**, const md_t*, void*, void*);
	int (*mem_destroy)(void*);
	int (*engine_create)(void**, int, size_t);
	int (*stream_create)(void**, void*, unsigned);
	int (*stream_wait)(void*);
	int (*reorder_pd_create)(void**, const md_t*, void*, const md_t*, void*, const void*);
	size_t (*md_get_size)(const md_t*);
	int (*md_equal)(const md_t*, const md_t*);
	void (*omp_set_num_threads)(int); // from the OpenMP runtime oneDNN links; NULL if none
	int (*omp_get_max_threads)(void);
	void *engine, *stream;
} dn;

// dn_open loads oneDNN and creates a CPU engine and stream; 0 on success.
static int dn_open(const char *file) {
	void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
	if (!h) return 1;
#define SYM(f, name) if (!(*(void**)&dn.f = dlsym(h, name))) return 2;
	SYM(md_by_strides, "dnnl_memory_desc_init_by_strides")
	SYM(md_by_tag, "dnnl_memory_desc_init_by_tag")
	SYM(fwd_init, "dnnl_convolution_forward_desc_init")
	SYM(bwd_data_init, "dnnl_convolution_backward_data_desc_init")
	SYM(bwd_w_init, "dnnl_convolution_backward_weights_desc_init")
	SYM(pd_create, "dnnl_primitive_desc_create")
	SYM(attr_create, "dnnl_primitive_attr_create")
	SYM(attr_destroy, "dnnl_primitive_attr_destroy")
	SYM(attr_set_scratchpad_mode, "dnnl_primitive_attr_set_scratchpad_mode")
	SYM(pd_destroy, "dnnl_primitive_desc_destroy")
	SYM(pd_query_md, "dnnl_primitive_desc_query_md")
	SYM(pd_query, "dnnl_primitive_desc_query")
	SYM(prim_create, "dnnl_primitive_create")
	SYM(prim_destroy, "dnnl_primitive_destroy")
	SYM(prim_execute, "dnnl_primitive_execute")
	SYM(mem_create, "dnnl_memory_create")
	SYM(mem_destroy, "dnnl_memory_destroy")
	SYM(engine_create, "dnnl_engine_create")
	SYM(stream_create, "dnnl_stream_create")
	SYM(stream_wait, "dnnl_stream_wait")
	SYM(reorder_pd_create, "dnnl_reorder_primitive_desc_create")
	SYM(md_get_size, "dnnl_memory_desc_get_size")
	SYM(md_equal, "dnnl_memory_desc_equal")
	const int *(*version)(void);
	if (!(*(void**)&version = dlsym(h, "dnnl_version"))) return 2;
	if (version()[0] != 2) return 5; // the struct sizes and enum values below are oneDNN 2.x's
	*(void**)&dn.omp_set_num_threads = dlsym(h, "omp_set_num_threads");
	*(void**)&dn.omp_get_max_threads = dlsym(h, "omp_get_max_threads");
	if (!dn.omp_set_num_threads || !dn.omp_get_max_threads) dn.omp_set_num_threads = NULL;
#undef SYM
	if (dn.engine_create(&dn.engine, ENGINE_CPU, 0)) return 3;
	if (dn.stream_create(&dn.stream, dn.engine, STREAM_DEFAULT)) return 4;
	return 0;
}

// One convolution of fixed geometry, of one kind (0 forward, 1 backward-data,
// 2 backward-weights), with the reorder between our HWIO kernel and the
// primitive's kernel layout (none when they agree).
typedef struct {
	int kind;
	void *prim, *reorder;
	md_t src, dst, user_w, prim_w;
	size_t prim_w_bytes;
	md_t sp_md, rsp_md;       // scratchpads of the convolution and of the reorder
	size_t sp_bytes, rsp_bytes;
	void *sp;                 // one buffer for both (they never run at once)
	char impl[128]; // copied: the string oneDNN returns lives in the primitive descriptor
} plan_t;

// dn_threads sets the calling thread's OpenMP team size to n (n < 1: leave
// it): the setting is per thread, and a call may come from any thread.
static void dn_threads(int n) {
	if (n > 0 && dn.omp_set_num_threads && dn.omp_get_max_threads() != n) dn.omp_set_num_threads(n);
}

// scratchpad records the scratchpad a primitive descriptor asks for.
static int scratchpad(const void *pd, md_t *md, size_t *bytes) {
	const md_t *m = dn.pd_query_md(pd, Q_SCRATCHPAD_MD, 0);
	if (!m) return -4;
	memcpy(md, m, MD_SIZE);
	*bytes = dn.md_get_size(md);
	return 0;
}

// dn_plan_free destroys a plan and its primitives.
static void dn_plan_free(plan_t *p) {
	if (!p) return;
	if (p->prim) dn.prim_destroy(p->prim);
	if (p->reorder) dn.prim_destroy(p->reorder);
	free(p->sp);
	free(p);
}

// geo: n, c, h, w, f, kh, kw, oh, ow, sh, sw, pt, pl, pb, pr.
static plan_t *dn_plan(int kind, const int64_t *geo, int *status) {
	int64_t n = geo[0], c = geo[1], h = geo[2], w = geo[3], f = geo[4], kh = geo[5], kw = geo[6], oh = geo[7], ow = geo[8];
	int64_t strides[12] = {geo[9], geo[10]}, pad_l[12] = {geo[11], geo[12]}, pad_r[12] = {geo[13], geo[14]};
	plan_t *p = calloc(1, sizeof(plan_t));
	if (!p) { *status = -2; return NULL; }
	p->kind = kind;
	int64_t sd[12] = {n, c, h, w}, ss[12] = {h * w * c, 1, w * c, c};
	int64_t dd[12] = {n, f, oh, ow}, ds[12] = {oh * ow * f, 1, ow * f, f};
	int64_t wd[12] = {f, c, kh, kw}, ws[12] = {1, f, kw * c * f, c * f};
	md_t any_w;
	cd_t fd, bd;
	void *fpd = NULL, *pd = NULL, *attr = NULL;
	int s;
	if ((s = dn.attr_create(&attr)) || (s = dn.attr_set_scratchpad_mode(attr, SCRATCHPAD_USER))) goto fail;
	if ((s = dn.md_by_strides(&p->src, 4, sd, F32, ss)) || (s = dn.md_by_strides(&p->dst, 4, dd, F32, ds)) ||
		(s = dn.md_by_strides(&p->user_w, 4, wd, F32, ws)) || (s = dn.md_by_tag(&any_w, 4, wd, F32, TAG_ANY))) goto fail;
	if ((s = dn.fwd_init(&fd, FWD_TRAINING, CONV_DIRECT, &p->src, &any_w, NULL, &p->dst, strides, pad_l, pad_r))) goto fail;
	if ((s = dn.pd_create(&fpd, &fd, attr, dn.engine, NULL))) goto fail;
	if (kind == 0) {
		pd = fpd;
		fpd = NULL;
	} else {
		if (kind == 1) s = dn.bwd_data_init(&bd, CONV_DIRECT, &p->src, &any_w, &p->dst, strides, pad_l, pad_r);
		else s = dn.bwd_w_init(&bd, CONV_DIRECT, &p->src, &any_w, NULL, &p->dst, strides, pad_l, pad_r);
		if (s || (s = dn.pd_create(&pd, &bd, attr, dn.engine, fpd))) goto fail;
	}
	const md_t *wmd = dn.pd_query_md(pd, kind == 2 ? Q_DIFF_WEIGHTS_MD : Q_WEIGHTS_MD, 0);
	if (!wmd) { s = -3; goto fail; }
	memcpy(&p->prim_w, wmd, MD_SIZE);
	const char *impl = NULL;
	if (dn.pd_query(pd, Q_IMPL_INFO_STR, 0, &impl) == 0 && impl) strncpy(p->impl, impl, sizeof p->impl - 1);
	if ((s = scratchpad(pd, &p->sp_md, &p->sp_bytes))) goto fail;
	if ((s = dn.prim_create(&p->prim, pd))) goto fail;
	if (!dn.md_equal(&p->prim_w, &p->user_w)) {
		void *rpd = NULL;
		p->prim_w_bytes = dn.md_get_size(&p->prim_w);
		if (kind == 2) s = dn.reorder_pd_create(&rpd, &p->prim_w, dn.engine, &p->user_w, dn.engine, attr);
		else s = dn.reorder_pd_create(&rpd, &p->user_w, dn.engine, &p->prim_w, dn.engine, attr);
		if (!s) s = scratchpad(rpd, &p->rsp_md, &p->rsp_bytes);
		if (!s) s = dn.prim_create(&p->reorder, rpd);
		if (rpd) dn.pd_destroy(rpd);
		if (s) goto fail;
	}
	size_t sp = p->sp_bytes > p->rsp_bytes ? p->sp_bytes : p->rsp_bytes;
	if (sp && !(p->sp = aligned_alloc(64, (sp + 63) / 64 * 64))) { s = -2; goto fail; }
	dn.pd_destroy(pd);
	if (fpd) dn.pd_destroy(fpd);
	dn.attr_destroy(attr);
	*status = 0;
	return p;
fail:
	*status = s ? s : -1;
	if (fpd) dn.pd_destroy(fpd);
	if (pd) dn.pd_destroy(pd);
	if (attr) dn.attr_destroy(attr);
	dn_plan_free(p);
	return NULL;
}

// dn_reorder runs a plan's kernel reorder on one thread: kernels are small
// (the largest is 2 MB), and on a loaded machine an OpenMP team's barrier
// could wait milliseconds for a descheduled thread (measured: 0.06 ms to
// 15 ms for the same 64×128×3×3 reorder). omp_set_num_threads applies to the
// calling thread, which runs the whole of dn_exec.
static int dn_reorder(plan_t *p, void *from, void *to) {
	exec_arg_t r[3] = {{ARG_FROM, from}, {ARG_TO, to}, {ARG_SCRATCHPAD, NULL}};
	int nt = 0, s, n = 2;
	if (p->rsp_bytes) {
		if ((s = dn.mem_create(&r[2].mem, &p->rsp_md, dn.engine, p->sp))) return s;
		n = 3;
	}
	if (dn.omp_set_num_threads) {
		nt = dn.omp_get_max_threads();
		dn.omp_set_num_threads(1);
	}
	s = dn.prim_execute(p->reorder, dn.stream, n, r);
	if (nt) dn.omp_set_num_threads(nt);
	if (r[2].mem) dn.mem_destroy(r[2].mem);
	return s;
}

// dn_exec runs a plan. Forward: a = x, b = kernel, out = y. Backward-data:
// a = dy, b = kernel, out = dx. Backward-weights: a = x, b = dy, out = dkernel.
// Every memory object wraps the caller's buffers and is destroyed before
// returning.
static int dn_exec(plan_t *p, float *a, float *b, float *out, int threads) {
	void *m_a = NULL, *m_b = NULL, *m_out = NULL, *m_uw = NULL, *m_pw = NULL, *m_sp = NULL;
	void *pw = NULL;
	int s, nargs = 3;
	dn_threads(threads);
	float *user_w = p->kind == 2 ? out : b;
	const md_t *a_md = p->kind == 1 ? &p->dst : &p->src;
	const md_t *out_md = p->kind == 0 ? &p->dst : &p->src;
	if ((s = dn.mem_create(&m_a, a_md, dn.engine, a))) goto done;
	if (p->reorder) {
		if (!(pw = aligned_alloc(64, (p->prim_w_bytes + 63) / 64 * 64))) { s = -2; goto done; }
		if ((s = dn.mem_create(&m_uw, &p->user_w, dn.engine, user_w))) goto done;
		if ((s = dn.mem_create(&m_pw, &p->prim_w, dn.engine, pw))) goto done;
	} else if ((s = dn.mem_create(&m_pw, &p->prim_w, dn.engine, user_w))) goto done;
	if (p->sp_bytes) {
		if ((s = dn.mem_create(&m_sp, &p->sp_md, dn.engine, p->sp))) goto done;
		nargs = 4;
	}
	if (p->kind != 2 && p->reorder && (s = dn_reorder(p, m_uw, m_pw))) goto done;
	if (p->kind == 2) {
		if ((s = dn.mem_create(&m_b, &p->dst, dn.engine, b))) goto done;
		exec_arg_t args[4] = {{ARG_SRC, m_a}, {ARG_DIFF_DST, m_b}, {ARG_DIFF_WEIGHTS, m_pw}, {ARG_SCRATCHPAD, m_sp}};
		if ((s = dn.prim_execute(p->prim, dn.stream, nargs, args))) goto done;
		if (p->reorder && (s = dn_reorder(p, m_pw, m_uw))) goto done;
	} else {
		if ((s = dn.mem_create(&m_out, out_md, dn.engine, out))) goto done;
		exec_arg_t args[4] = {{p->kind == 0 ? ARG_SRC : ARG_DIFF_DST, m_a}, {ARG_WEIGHTS, m_pw}, {p->kind == 0 ? ARG_DST : ARG_DIFF_SRC, m_out}, {ARG_SCRATCHPAD, m_sp}};
		if ((s = dn.prim_execute(p->prim, dn.stream, nargs, args))) goto done;
	}
	s = dn.stream_wait(dn.stream);
done:
	if (m_a) dn.mem_destroy(m_a);
	if (m_b) dn.mem_destroy(m_b);
	if (m_out) dn.mem_destroy(m_out);
	if (m_uw) dn.mem_destroy(m_uw);
	if (m_pw) dn.mem_destroy(m_pw);
	if (m_sp) dn.mem_destroy(m_sp);
	free(pw);
	return s;
}
*/
import "C"

import (
	"container/list"
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// dnnlConvFile is the oneDNN 2.x library whose convolutions are used.
const dnnlConvFile = "libdnnl.so.2"

var dnnl struct {
	once sync.Once
	err  error

	mu    sync.Mutex                 // one stream, one scratchpad per plan: executions are serialised
	plans map[dnnlGeom]*list.Element // of *dnnlPlan, by geometry
	lru   *list.List                 // most recently used first
}

// dnnlPlan is one geometry's primitives, or oneDNN's refusal of it.
type dnnlPlan struct {
	g    dnnlGeom
	p    *C.plan_t // nil when refused
	impl string    // the implementation oneDNN chose, for tests and logs
	err  error     // the refusal, wrapping errDNNLRefused
}

// dnnlPlanCap bounds the plans kept: a process that meets many geometries
// (batch sizes are part of one) keeps the most recently used, and destroys
// the rest. A step of our largest model uses about 40.
var dnnlPlanCap = 256

// errDNNLRefused marks a geometry oneDNN would not make a plan for: the
// executor runs that node with simplego's own convolution instead.
var errDNNLRefused = errors.New("oneDNN refused the convolution")

// dnnlRefuse, when set (by tests), makes the plans of the geometries it
// reports refused as if oneDNN had refused them.
var dnnlRefuse func(dnnlGeom) bool

// dnnlGeom is one convolution: kind 0 forward, 1 backward-data, 2
// backward-weights; NHWC input [n, h, w, c], HWIO kernel [kh, kw, c, f],
// output [n, oh, ow, f]; strides and paddings (top, left, bottom, right).
type dnnlGeom struct {
	kind                                                  int
	n, c, h, w, f, kh, kw, oh, ow, sh, sw, pt, pl, pb, pr int
}

// lengths are the element counts of dnnlConv's operands a, b and out.
func (g dnnlGeom) lengths() (a, b, out int) {
	x, k, y := g.n*g.h*g.w*g.c, g.kh*g.kw*g.c*g.f, g.n*g.oh*g.ow*g.f
	switch g.kind {
	case 0:
		return x, k, y
	case 1:
		return y, k, x
	default:
		return x, y, k
	}
}

// openDNNLConv loads oneDNN's convolutions once; nil when they can be used.
func openDNNLConv() error {
	dnnl.once.Do(func() {
		cf := C.CString(dnnlConvFile)
		defer C.free(unsafe.Pointer(cf))
		if s := C.dn_open(cf); s != 0 {
			dnnl.err = fmt.Errorf("oneDNN convolutions unavailable (%s: step %d; Debian: apt-get install libdnnl2)", dnnlConvFile, int(s))
			return
		}
		dnnl.plans = map[dnnlGeom]*list.Element{}
		dnnl.lru = list.New()
	})
	return dnnl.err
}

// dnnlConv runs one convolution of geometry g (see dn_exec for a, b, out)
// from whatever thread the caller is on. An error wrapping errDNNLRefused means oneDNN has no
// plan for g; a length that does not match g is an error before any C call.
func dnnlConv(g dnnlGeom, a, b, out []float32) error {
	la, lb, lo := g.lengths()
	if len(a) != la || len(b) != lb || len(out) != lo || la == 0 || lb == 0 || lo == 0 {
		return fmt.Errorf("engine: oneDNN convolution %+v: operands of %d, %d and %d elements, want %d, %d and %d",
			g, len(a), len(b), len(out), la, lb, lo)
	}
	dnnl.mu.Lock()
	defer dnnl.mu.Unlock()
	p := dnnlPlanFor(g)
	if p.err != nil {
		return p.err
	}
	if s := C.dn_exec(p.p, (*C.float)(unsafe.Pointer(&a[0])), (*C.float)(unsafe.Pointer(&b[0])), (*C.float)(unsafe.Pointer(&out[0])), ompThreads()); s != 0 {
		return fmt.Errorf("engine: oneDNN convolution %+v failed with status %d", g, int(s))
	}
	return nil
}

// dnnlPlanFor returns g's plan, making it (and evicting the least recently
// used beyond dnnlPlanCap) when there is none. Holding dnnl.mu.
func dnnlPlanFor(g dnnlGeom) *dnnlPlan {
	defer dnnlEvict()
	if e := dnnl.plans[g]; e != nil {
		dnnl.lru.MoveToFront(e)
		return e.Value.(*dnnlPlan)
	}
	p := &dnnlPlan{g: g}
	if dnnlRefuse != nil && dnnlRefuse(g) {
		p.err = fmt.Errorf("engine: %w %+v (refused by a test)", errDNNLRefused, g)
	} else {
		geo := []C.int64_t{C.int64_t(g.n), C.int64_t(g.c), C.int64_t(g.h), C.int64_t(g.w), C.int64_t(g.f), C.int64_t(g.kh), C.int64_t(g.kw),
			C.int64_t(g.oh), C.int64_t(g.ow), C.int64_t(g.sh), C.int64_t(g.sw), C.int64_t(g.pt), C.int64_t(g.pl), C.int64_t(g.pb), C.int64_t(g.pr)}
		var status C.int
		if p.p = C.dn_plan(C.int(g.kind), &geo[0], &status); p.p == nil {
			p.err = fmt.Errorf("engine: %w %+v (status %d)", errDNNLRefused, g, int(status))
		} else {
			p.impl = C.GoString(&p.p.impl[0])
		}
	}
	dnnl.plans[g] = dnnl.lru.PushFront(p)
	return p
}

// dnnlEvict destroys the least recently used plans beyond dnnlPlanCap.
// Holding dnnl.mu, so between executions: no plan is in use.
func dnnlEvict() {
	for dnnl.lru.Len() > max(dnnlPlanCap, 1) {
		old := dnnl.lru.Remove(dnnl.lru.Back()).(*dnnlPlan)
		delete(dnnl.plans, old.g)
		C.dn_plan_free(old.p)
	}
}

// dnnlImpl is the implementation oneDNN runs geometry g with ("" before its
// first run, or after its plan was evicted).
func dnnlImpl(g dnnlGeom) string {
	dnnl.mu.Lock()
	defer dnnl.mu.Unlock()
	if e := dnnl.plans[g]; e != nil {
		return e.Value.(*dnnlPlan).impl
	}
	return ""
}

// dnnlPlans is the number of plans kept (refusals included).
func dnnlPlans() int {
	dnnl.mu.Lock()
	defer dnnl.mu.Unlock()
	return dnnl.lru.Len()
}
