//go:build cgo && !noblas && linux

package kernels

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// The oneDNN threading rules (docs/engine.md): a primitive whose
// implementation keeps a per-thread scratchpad (the x64:gemm:jit
// convolutions) must run on the OS thread that created it, unless it is
// given its own scratchpad (dnnlconv_cgo.go does). These tests break the
// rule from the caller's side — they create a plan on one locked OS thread
// and execute it on others, from many goroutines, under CPU and GC load —
// and check every result against a plain Go convolution. Before plans
// carried their scratchpads the first of them crashed the test binary with a
// segmentation fault on an OpenMP thread.

// threadTestGeoms are convolutions of every kind, among them the two
// backward-data geometries that took oneDNN's gemm path on an AVX2 EPYC
// and crashed there, and shapes our models use.
var threadTestGeoms = []dnnlGeom{
	convGeom(1, 2, 8, 6, 4, 4, 2, 1),    // backward-data {c=6, f=4, 4×4, stride 2}: gemm on AVX2
	convGeom(1, 4, 16, 1, 32, 4, 2, 1),  // backward-data {c=1, f=32, 4×4, stride 2}: gemm on AVX2
	convGeom(0, 2, 8, 3, 5, 3, 1, 1),    // forward 3×3 stem
	convGeom(0, 2, 8, 6, 4, 4, 2, 1),    // forward 4×4 stride 2
	convGeom(2, 2, 8, 6, 4, 4, 2, 1),    // backward-weights 4×4 stride 2
	convGeom(2, 3, 16, 16, 32, 4, 2, 1), // backward-weights, wider
	convGeom(1, 2, 9, 4, 6, 3, 2, 1),    // backward-data 3×3 stride 2
	convGeom(0, 4, 32, 64, 3, 3, 1, 1),  // forward to RGB
}

// convGeom is a square convolution of kind 0/1/2 on n images h×h×c with f
// filters k×k, stride s and padding p on every side.
func convGeom(kind, n, h, c, f, k, s, p int) dnnlGeom {
	o := (h+2*p-k)/s + 1
	return dnnlGeom{kind: kind, n: n, c: c, h: h, w: h, f: f, kh: k, kw: k, oh: o, ow: o, sh: s, sw: s, pt: p, pl: p, pb: p, pr: p}
}

// convOperands returns deterministic operands a, b and the output length of
// geometry g, in dnnlConv's order (forward x, kernel; backward-data dy,
// kernel; backward-weights x, dy).
func convOperands(g dnnlGeom, seed int) (a, b []float32, outLen int) {
	x, k, y := g.n*g.h*g.w*g.c, g.kh*g.kw*g.c*g.f, g.n*g.oh*g.ow*g.f
	v := randVec32(x + k + y + seed)
	switch g.kind {
	case 0:
		return v[:x], v[x : x+k], y
	case 1:
		return v[:y], v[y : y+k], x
	default:
		return v[:x], v[x : x+y], k
	}
}

// refConv is the convolution of geometry g computed in float64 by the
// definition: y[b,i,j,o] = Σ x[b, i·sh−pt+di, j·sw−pl+dj, ci]·k[di,dj,ci,o],
// and its two gradients by the same index walk.
func refConv(g dnnlGeom, a, b []float32) []float32 {
	xi := func(bi, r, c, ci int) int { return ((bi*g.h+r)*g.w+c)*g.c + ci }
	ki := func(di, dj, ci, o int) int { return ((di*g.kw+dj)*g.c+ci)*g.f + o }
	yi := func(bi, i, j, o int) int { return ((bi*g.oh+i)*g.ow+j)*g.f + o }
	var out []float64
	switch g.kind {
	case 0:
		out = make([]float64, g.n*g.oh*g.ow*g.f)
	case 1:
		out = make([]float64, g.n*g.h*g.w*g.c)
	default:
		out = make([]float64, g.kh*g.kw*g.c*g.f)
	}
	for bi := 0; bi < g.n; bi++ {
		for i := 0; i < g.oh; i++ {
			for j := 0; j < g.ow; j++ {
				for di := 0; di < g.kh; di++ {
					r := i*g.sh - g.pt + di
					if r < 0 || r >= g.h {
						continue
					}
					for dj := 0; dj < g.kw; dj++ {
						c := j*g.sw - g.pl + dj
						if c < 0 || c >= g.w {
							continue
						}
						for ci := 0; ci < g.c; ci++ {
							for o := 0; o < g.f; o++ {
								switch g.kind {
								case 0:
									out[yi(bi, i, j, o)] += float64(a[xi(bi, r, c, ci)]) * float64(b[ki(di, dj, ci, o)])
								case 1:
									out[xi(bi, r, c, ci)] += float64(a[yi(bi, i, j, o)]) * float64(b[ki(di, dj, ci, o)])
								default:
									out[ki(di, dj, ci, o)] += float64(a[xi(bi, r, c, ci)]) * float64(b[yi(bi, i, j, o)])
								}
							}
						}
					}
				}
			}
		}
	}
	r := make([]float32, len(out))
	for i, v := range out {
		r[i] = float32(v)
	}
	return r
}

// onLockedThread runs f on a new goroutine locked to its own OS thread and
// returns that thread's id. The thread is not unlocked, so the runtime
// retires it when the goroutine ends: no later goroutine runs on it.
func onLockedThread(f func()) int {
	tid := make(chan int)
	go func() {
		runtime.LockOSThread()
		f()
		tid <- syscall.Gettid()
	}()
	return <-tid
}

// checkConv runs geometry g through oneDNN and compares it with refConv.
func checkConv(g dnnlGeom, seed int) error {
	a, b, n := convOperands(g, seed)
	out := make([]float32, n)
	if err := dnnlConv(g, a, b, out); err != nil {
		return err
	}
	if d := maxRelDiff(out, refConv(g, a, b)); !(d < 1e-5) {
		return fmt.Errorf("convolution %+v differs from the reference by %g (relative)", g, d)
	}
	return nil
}

// TestDNNLCrossThread creates each plan on one locked OS thread and runs it
// on two others; then again in a child process with DNNL_MAX_CPU_ISA=SSE41,
// where oneDNN picks its gemm-based convolutions for most geometries on any
// x86 CPU, so the test exercises the implementations that crash when the
// rule is broken wherever it runs.
func TestDNNLCrossThread(t *testing.T) {
	requireFast(t, fastConv.installed, "oneDNN ConvGeneral ("+fastConv.reason+")")
	var gemm []string
	for _, g := range threadTestGeoms {
		var errs [3]error
		tids := [3]int{}
		tids[0] = onLockedThread(func() { errs[0] = checkConv(g, 0) })
		for i := 1; i < 3; i++ {
			tids[i] = onLockedThread(func() { errs[i] = checkConv(g, i) })
		}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("call %d (thread %d): %v", i, tids[i], err)
			}
		}
		if tids[0] == tids[1] || tids[1] == tids[2] {
			t.Fatalf("callers ran on threads %v: the test needs three different ones", tids)
		}
		if impl := dnnlImpl(g); strings.Contains(impl, "gemm") {
			gemm = append(gemm, fmt.Sprintf("kind %d c=%d f=%d %d×%d/%d: %s", g.kind, g.c, g.f, g.kh, g.kw, g.sh, impl))
		}
	}
	isa := os.Getenv("DNNL_MAX_CPU_ISA")
	t.Logf("DNNL_MAX_CPU_ISA=%q, gemm-based plans: %v", isa, gemm)
	if isa == "SSE41" && len(gemm) == 0 {
		t.Fatalf("no geometry took a gemm-based convolution under SSE41: the test no longer covers the case it was written for")
	}
	if isa == "" {
		runChild(t, "TestDNNLCrossThread", "DNNL_MAX_CPU_ISA=SSE41")
	}
}

// runChild runs one test of this binary again in a child process with extra
// environment: oneDNN reads DNNL_MAX_CPU_ISA once per process.
func runChild(t *testing.T, test string, env ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^"+test+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+test) {
		t.Fatalf("child %s with %v: %v\n%s", test, env, err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "gemm-based plans") {
			t.Logf("child: %s", strings.TrimSpace(l))
		}
	}
}

// TestDNNLStress runs convolutions of every kind from many goroutines at
// once while other goroutines allocate and collect garbage: every result
// must match the reference, and the process must not crash.
func TestDNNLStress(t *testing.T) {
	requireFast(t, fastConv.installed, "oneDNN ConvGeneral ("+fastConv.reason+")")
	rounds := 12
	if testing.Short() {
		rounds = 4
	}
	stop := make(chan struct{})
	var churn sync.WaitGroup
	for i := 0; i < 3; i++ {
		churn.Add(1)
		go func() {
			defer churn.Done()
			var keep [][]byte
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				keep = append(keep, make([]byte, 1<<(10+j%8)))
				if len(keep) > 64 {
					keep = keep[:0]
					runtime.GC()
				}
				runtime.Gosched()
			}
		}()
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16*rounds)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				g := threadTestGeoms[(w+r)%len(threadTestGeoms)]
				if err := checkConv(g, w); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	churn.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
