//go:build cgo && !noblas

package kernels

// Fast CPU matmuls (see simplego_hooks.go): every float32 DotGeneral the
// pure-Go backend runs goes through a native sgemm (blas_cgo.go: oneDNN or
// OpenBLAS) when one is installed.
//
// Why this way: profiles of our training steps (docs/performance.md) put
// 70–80% of the time in simplego's own matmul kernels, and GoMLX v0.27.2
// offers no way to add a kernel or a custom op from outside the backend. The
// backend keeps one table of executors per op type, filled in its init
// functions; we replace the DotGeneral entry (go:linkname), keeping the
// original for every case sgemm cannot take. Graphs, gradients and the XLA
// backend are untouched: only how the CPU backend runs a DotGeneral node
// changes. The node's parameters live in unexported fields; they are read
// through reflection, and init checks every field it needs by name and type,
// so a GoMLX upgrade that moves them disables this path instead of misreading
// memory (TestFastDotInstalled then fails and says why).

import (
	"fmt"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

var fastDot nativeExecutor

// The execution paths of simplego's DotGeneral whose node inputs are the raw
// operands (the blocked and check paths get pre-tiled copies instead); values
// of its dotGeneralExecutionPath enum in v0.27.2.
var rawInputPaths = map[int64]bool{1: true /* normalized */, 3: true /* smallMatMul */, 4: true /* packgemm */, 5: true /* highway */}

func init() {
	fastDot.install(backends.OpTypeDotGeneral, execFastDot, func() string {
		if openBLAS() == "" {
			return fmt.Sprintf("no native sgemm found (tried %v; Debian: apt-get install libdnnl2 or libopenblas0)", gemmLibraries)
		}
		return ""
	})
}

// CPUKernels describes how the pure-Go backend runs matmuls in this binary,
// for logs and benchmark reports.
func CPUKernels() string {
	if fastDot.installed {
		return "DotGeneral via " + gemmName()
	}
	return "pure-Go DotGeneral (" + fastDot.reason + ")"
}

// MatMulTime is the wall time this process has spent in native sgemm calls
// (zero without them): benchmarks report its share of a step.
func MatMulTime() time.Duration { return time.Duration(fastDot.nanos.Load()) }

// BackendOption is added to the pure-Go backend's options when the
// sgemm path is installed: it makes simplego keep every DotGeneral's operands
// raw (no pre-tiled copies), so that execFastDot can take them all.
func BackendOption() string {
	if fastDot.installed {
		return "dotgeneral_normalized"
	}
	return ""
}

// dotPlan is how one DotGeneral node maps onto batch×sgemm calls.
type dotPlan struct {
	ok             bool
	batch, m, n, k int
	transA, transB bool
	out            shapes.Shape
}

func planFor(be *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer) *dotPlan {
	return fastDot.plans.get(node, func() any {
		ls, err1 := be.BufferShape(inputs[0])
		rs, err2 := be.BufferShape(inputs[1])
		if err1 != nil || err2 != nil {
			return &dotPlan{}
		}
		return makePlan(node, ls.Rank(), rs.Rank())
	}).(*dotPlan)
}

func makePlan(node *simplego.Node, lhsRank, rhsRank int) *dotPlan {
	p := &dotPlan{}
	out, data := nodeShapeAndData(node)
	if out.DType != dtypes.Float32 || out.Rank() != 3 || data == nil {
		return p
	}
	axes, sizes, ok := intFields(data,
		[]string{"lhsContractingAxes", "lhsBatchAxes", "rhsContractingAxes", "rhsBatchAxes"},
		[]string{"batchSize", "lhsCrossSize", "rhsCrossSize", "contractingSize", "execPath"})
	if !ok || !rawInputPaths[int64(sizes[4])] {
		return p
	}
	lc, lb, rc, rb := axes[0], axes[1], axes[2], axes[3]
	batch, m, n, k := sizes[0], sizes[1], sizes[2], sizes[3]
	if out.Dimensions[0] != batch || out.Dimensions[1] != m || out.Dimensions[2] != n {
		return p
	}
	// Operands must be [batch…, rows, cols] with the batch axes leading and
	// the contracting axes one contiguous run, first or last after them.
	nb := len(lb)
	if !isRun(lb, 0) || !isRun(rb, 0) {
		return p
	}
	switch {
	case isRun(lc, lhsRank-len(lc)):
		p.transA = false // [M, K]
	case isRun(lc, nb):
		p.transA = true // [K, M]
	default:
		return p
	}
	switch {
	case isRun(rc, nb):
		p.transB = false // [K, N]
	case isRun(rc, rhsRank-len(rc)):
		p.transB = true // [N, K]
	default:
		return p
	}
	p.ok, p.batch, p.m, p.n, p.k, p.out = true, batch, m, n, k, out
	return p
}

// isRun reports whether axes are start, start+1, start+2, ….
func isRun(axes []int, start int) bool {
	for i, a := range axes {
		if a != start+i {
			return false
		}
	}
	return true
}

func execFastDot(be *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	if !fastDot.on.Load() || len(inputs) != 2 {
		return fastDot.stock(be, node, inputs, owned)
	}
	p := planFor(be, node, inputs)
	if !p.ok {
		return fastDot.stock(be, node, inputs, owned)
	}
	a, b, ok, err := float32Pair(be, inputs)
	if err != nil {
		return nil, err
	}
	if !ok {
		return fastDot.stock(be, node, inputs, owned)
	}
	out, c, err := newFloat32Buffer(be, p.out, "DotGeneral")
	if err != nil {
		return nil, err
	}
	fastDot.calls.Add(1)
	t0 := time.Now()
	defer func() { fastDot.nanos.Add(int64(time.Since(t0))) }()
	sa, sb, sc := p.m*p.k, p.k*p.n, p.m*p.n
	// The plan was made from the node's first inputs: operands of other
	// sizes are an error here, never a read past them in C.
	if len(a) != p.batch*sa || len(b) != p.batch*sb || len(c) != p.batch*sc {
		be.BufferFinalize(out)
		return nil, fmt.Errorf("engine: DotGeneral planned as %d×(%d×%d·%d×%d) got operands of %d and %d elements and an output of %d",
			p.batch, p.m, p.k, p.k, p.n, len(a), len(b), len(c))
	}
	for i := 0; i < p.batch; i++ {
		if err := sgemm(p.transA, p.transB, p.m, p.n, p.k, a[i*sa:(i+1)*sa], b[i*sb:(i+1)*sb], c[i*sc:(i+1)*sc]); err != nil {
			be.BufferFinalize(out)
			return nil, err
		}
	}
	return out, nil
}
