package kernels

// Fast kernels for the pure-Go backend (simplego) of GoMLX v0.27.2.
//
// simplego runs each graph node through one executor per op type, kept in a
// package-level table that its init functions fill; GoMLX offers no way to
// add a kernel or a custom op from outside the backend. Where profiles of our
// training steps showed a stock executor to be the bottleneck
// (docs/performance.md), we replace its table entry (go:linkname) with one
// that takes the common cases fast and hands every other case to the stock
// executor it replaced. Graphs, gradients and the XLA backend are untouched:
// only how the CPU backend runs a node changes, and every fast executor is
// tested against the stock one (fast*_test.go).
//
// A node's parameters live in unexported fields. They are read through
// reflection; the fields are looked up by name and type once, so a GoMLX
// upgrade that moves them disables the fast executors (TestFastKernelsInstalled
// fails and says why) instead of misreading memory.

import (
	"fmt"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
	_ "unsafe" // go:linkname
	"weak"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// EnvKernels, set to "stock", keeps simplego's own executors (and its own
// matmuls) even where faster ones are available; set to "openblas", it
// prefers OpenBLAS to oneDNN for the matmuls. For comparisons.
const EnvKernels = "LATENTEDIT_CPU_KERNELS"

func stockKernelsOnly() bool { return os.Getenv(EnvKernels) == "stock" }

type simplegoExecutor func(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, inputsOwned []bool) (*simplego.Buffer, error)

//go:linkname simplegoNodeExecutors github.com/gomlx/gomlx/backends/simplego.nodeExecutors
var simplegoNodeExecutors [backends.OpTypeLast]simplegoExecutor

// simplegoHooks is filled by a variable initialiser, not an init function,
// so that it is ready before any file's init installs an executor.
var simplegoHooks = findNodeFields()

// verifiedGoMLX is the GoMLX release whose simplego internals these hooks
// were written against: the executor table's type (an array of
// simplegoExecutor indexed by OpType), Node's shape and data fields, and the
// op parameter structs read by reflection. go:linkname cannot check a
// variable's type, so three checks stand in for it: a binary whose module
// list names another GoMLX release keeps the stock executors; every entry
// replaced must be the simplego function it was in this release
// (stockExecutorNames: an array of another element type or order would put
// other words at those indices); and TestSimplegoDeclarations reads the
// source of the release go.mod names and compares the declarations. Any of
// them failing leaves the stock executors in place, and
// TestFastKernelsInstalled fails and says why.
const verifiedGoMLX = "v0.27.2"

const (
	gomlxModule = "github.com/gomlx/gomlx"
	simplegoPkg = gomlxModule + "/backends/simplego"
)

type nodeFields struct {
	reason              string  // why the fast executors cannot be installed; "" when they can
	nodeShape, nodeData uintptr // offsets in simplego.Node
}

// linkedGoMLX is the version of GoMLX this binary was built with, from its
// module build information ("" when the binary has none).
func linkedGoMLX() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, d := range bi.Deps {
		if d.Path == gomlxModule {
			if d.Replace != nil {
				return d.Replace.Version
			}
			return d.Version
		}
	}
	return ""
}

func findNodeFields() (h nodeFields) {
	// Test binaries carry no module list (""): there the executor names
	// below and TestSimplegoDeclarations, which reads go.mod's GoMLX, check.
	if v := linkedGoMLX(); v != "" && v != verifiedGoMLX {
		h.reason = fmt.Sprintf("the binary links GoMLX %s; the executor-table hooks are verified for %s only", v, verifiedGoMLX)
		return h
	}
	nt := reflect.TypeOf(simplego.Node{})
	field := func(name string, want reflect.Type) (uintptr, error) {
		f, ok := nt.FieldByName(name)
		if !ok || f.Type != want {
			return 0, fmt.Errorf("simplego.Node has no field %s of type %s (GoMLX version changed?)", name, want)
		}
		return f.Offset, nil
	}
	var err error
	if h.nodeShape, err = field("shape", reflect.TypeOf(shapes.Shape{})); err == nil {
		h.nodeData, err = field("data", reflect.TypeOf((*any)(nil)).Elem())
	}
	if err != nil {
		h.reason = err.Error()
	}
	return h
}

// stockExecutorNames are the functions simplego v0.27.2 runs the ops we
// replace with; the ops missing here run closures made in simplego's init
// functions, whose names carry counters and only their package is checked.
var stockExecutorNames = map[backends.OpType]string{
	backends.OpTypeBroadcastInDim: "execBroadcastInDim",
	backends.OpTypeReduceSum:      "execReduce",
	backends.OpTypeConcatenate:    "execConcatenate",
	backends.OpTypeGather:         "execGather",
	backends.OpTypeScatterSum:     "execScatter",
	backends.OpTypePad:            "execPad",
	backends.OpTypeSlice:          "execSlice",
	backends.OpTypeConvGeneral:    "execConvGeneral",
	backends.OpTypeDotGeneral:     "execDotGeneral",
}

// replaceExecutors puts execs in simplego's executor table in place of the
// executors of ops, all or none, and returns the ones it replaced; reason
// says why it replaced none. Called from init functions only.
func replaceExecutors(ops []backends.OpType, execs []simplegoExecutor) (stock []simplegoExecutor, reason string) {
	switch {
	case stockKernelsOnly():
		return nil, EnvKernels + "=stock"
	case simplegoHooks.reason != "":
		return nil, simplegoHooks.reason
	}
	stock = make([]simplegoExecutor, len(ops))
	for i, op := range ops {
		if stock[i] = simplegoNodeExecutors[op]; stock[i] == nil {
			return nil, "simplego has no " + op.String() + " executor"
		}
		// A table entry that is not the function simplego had there means
		// the table is not what it was (or another hook got there first).
		name := executorName(stock[i])
		if want, ok := stockExecutorNames[op]; ok && name != simplegoPkg+"."+want {
			return nil, fmt.Sprintf("simplego's %s executor is %q, not %s.%s (GoMLX changed?)", op, name, simplegoPkg, want)
		}
		if !strings.HasPrefix(name, simplegoPkg+".") {
			return nil, fmt.Sprintf("simplego's %s executor is %q, not a function of %s (GoMLX changed?)", op, name, simplegoPkg)
		}
	}
	for i, op := range ops {
		simplegoNodeExecutors[op] = execs[i]
	}
	return stock, ""
}

// executorName is the name of the function an executor runs.
func executorName(f simplegoExecutor) string {
	if fn := runtime.FuncForPC(reflect.ValueOf(f).Pointer()); fn != nil {
		return fn.Name()
	}
	return ""
}

// nodeShapeAndData returns a simplego node's output shape and op parameters.
// Only valid when simplegoHooks.reason is "".
func nodeShapeAndData(node *simplego.Node) (shapes.Shape, any) {
	base := unsafe.Pointer(node)
	return *(*shapes.Shape)(unsafe.Add(base, simplegoHooks.nodeShape)), *(*any)(unsafe.Add(base, simplegoHooks.nodeData))
}

// intFields reads the named []int and int fields of the struct data points
// to (a simplego node's parameters); ok is false if any is missing or of
// another type.
func intFields(data any, slices []string, scalars []string) (s [][]int, n []int, ok bool) {
	v := reflect.ValueOf(data)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, nil, false
	}
	v = v.Elem()
	for _, name := range slices {
		f := v.FieldByName(name)
		if !f.IsValid() || f.Kind() != reflect.Slice || f.Type().Elem().Kind() != reflect.Int {
			return nil, nil, false
		}
		x := make([]int, f.Len())
		for i := range x {
			x[i] = int(f.Index(i).Int())
		}
		s = append(s, x)
	}
	for _, name := range scalars {
		f := v.FieldByName(name)
		if !f.IsValid() || f.Kind() != reflect.Int {
			return nil, nil, false
		}
		n = append(n, int(f.Int()))
	}
	return s, n, true
}

// float32Pair returns the data of a two-input node's float32 operands; ok is
// false (and err nil) when either is of another type.
func float32Pair(be *simplego.Backend, inputs []*simplego.Buffer) (a, b []float32, ok bool, err error) {
	ad, err := be.BufferData(inputs[0])
	if err != nil {
		return nil, nil, false, err
	}
	bd, err := be.BufferData(inputs[1])
	if err != nil {
		return nil, nil, false, err
	}
	a, aok := ad.([]float32)
	b, bok := bd.([]float32)
	return a, b, aok && bok, nil
}

// newFloat32Buffer allocates an output buffer of the float32 shape out.
func newFloat32Buffer(be *simplego.Backend, out shapes.Shape, op string) (*simplego.Buffer, []float32, error) {
	buf := be.NewBuffer(out)
	if buf == nil {
		return nil, nil, fmt.Errorf("engine: %s: no output buffer for %s", op, out)
	}
	data, err := be.BufferData(buf)
	if err != nil {
		return nil, nil, err
	}
	return buf, data.([]float32), nil
}

// nativeExecutor is a simplego executor table entry replaced by one that
// runs the common cases through a native library (fastdot.go, fastconv.go).
type nativeExecutor struct {
	installed bool
	reason    string           // why not installed, when it is not
	stock     simplegoExecutor // simplego's own executor, for every other case
	on        atomic.Bool      // tests switch between the two executors
	calls     atomic.Int64     // nodes run natively
	fallbacks atomic.Int64     // nodes the native library refused, run by stock
	nanos     atomic.Int64     // time spent in them
	plans     nodeCache        // each node's plan
}

// install replaces op's executor with exec when open (which loads the native
// library) reports no problem; it records why not otherwise.
func (e *nativeExecutor) install(op backends.OpType, exec simplegoExecutor, open func() string) {
	if e.reason = open(); e.reason == "" {
		var stock []simplegoExecutor
		if stock, e.reason = replaceExecutors([]backends.OpType{op}, []simplegoExecutor{exec}); e.reason == "" {
			e.stock = stock[0]
		}
	}
	e.installed = e.reason == ""
	e.on.Store(e.installed)
}

// nodeCache keeps what an executor worked out about a graph node the first
// time it ran it (a plan), for as long as the node lives. It holds the nodes
// weakly: a compiled graph that is dropped (an Exec's cache evicts it, a
// trainer is closed, a server rebuilds an editor) is collected with its
// nodes, and their entries go with them; keyed by *simplego.Node, the cache
// would keep every graph the process ever compiled.
type nodeCache struct {
	m sync.Map     // weak.Pointer[simplego.Node] → plan
	n atomic.Int64 // entries, for tests
}

// get returns node's plan, making it with build on first use.
func (c *nodeCache) get(node *simplego.Node, build func() any) any {
	k := weak.Make(node)
	if p, ok := c.m.Load(k); ok {
		return p
	}
	p, loaded := c.m.LoadOrStore(k, build())
	if !loaded {
		c.n.Add(1)
		runtime.AddCleanup(node, func(k weak.Pointer[simplego.Node]) {
			c.m.Delete(k)
			c.n.Add(-1)
		}, k)
	}
	return p
}
