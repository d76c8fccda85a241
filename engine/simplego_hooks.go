package engine

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
	"sync"
	"sync/atomic"
	"unsafe"
	_ "unsafe" // go:linkname

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

type nodeFields struct {
	reason              string  // why the fast executors cannot be installed; "" when they can
	nodeShape, nodeData uintptr // offsets in simplego.Node
}

func findNodeFields() (h nodeFields) {
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
	nanos     atomic.Int64     // time spent in them
	plans     sync.Map         // *simplego.Node → its plan
}

// install replaces op's executor with exec when open (which loads the native
// library) reports no problem; it records why not otherwise.
func (e *nativeExecutor) install(op backends.OpType, exec simplegoExecutor, open func() string) {
	switch stock := simplegoNodeExecutors[op]; {
	case stockKernelsOnly():
		e.reason = EnvKernels + "=stock"
	case simplegoHooks.reason != "":
		e.reason = simplegoHooks.reason
	case stock == nil:
		e.reason = "simplego has no " + op.String() + " executor"
	default:
		if e.reason = open(); e.reason == "" {
			e.stock = stock
			simplegoNodeExecutors[op] = exec
		}
	}
	e.installed = e.reason == ""
	e.on.Store(e.installed)
}
