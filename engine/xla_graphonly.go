//go:build xla

package engine

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unsafe"

	"github.com/gomlx/go-xla/pkg/pjrt"
	"github.com/gomlx/go-xla/pkg/stablehlo"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/xla"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// ErrGraphOnly is what XLAGraphOnly's builders answer to Compile, after they
// have turned the graph into a StableHLO program.
var ErrGraphOnly = errors.New("engine: graph-only XLA backend: program built, nothing compiled")

// XLAGraphOnly is GoMLX's XLA backend without a PJRT plugin: every op of a
// graph goes through the same StableHLO builder a GPU run uses (op by op,
// with its shape inference), and Compile keeps the finished program text
// instead of handing it to a plugin. It is how the tests check, on machines
// without a GPU or a PJRT plugin (CI, and nothing may be downloaded), that
// our training steps still build for XLA: `go test -tags xla -run XLA`.
//
// GoMLX offers no builder without a plugin, so the backend's unexported
// plugin and client fields are set to empty values through reflection; the
// builder only checks that they are there. Buffers are shapes without data:
// host tensors given to an executable are "transferred" to placeholders.
type XLAGraphOnly struct {
	*xla.Backend
	mu    sync.Mutex
	built []builtProgram // every program, in the order built
}

type builtProgram struct{ name, text string }

// NewXLAGraphOnly returns the backend; an error names the GoMLX field that
// moved when an upgrade breaks the reflection.
func NewXLAGraphOnly() (*XLAGraphOnly, error) {
	be := &xla.Backend{}
	v := reflect.ValueOf(be).Elem()
	for name, val := range map[string]any{
		"plugin":       &pjrt.Plugin{},
		"client":       &pjrt.Client{},
		"pluginName":   "graph-only",
		"capabilities": xla.Capabilities.Clone(),
		"numDevices":   1,
	} {
		if err := setUnexported(v, name, val); err != nil {
			return nil, err
		}
	}
	return &XLAGraphOnly{Backend: be}, nil
}

func setUnexported(v reflect.Value, name string, val any) error {
	f := v.FieldByName(name)
	rv := reflect.ValueOf(val)
	if !f.IsValid() || f.Type() != rv.Type() {
		return fmt.Errorf("engine: xla.Backend has no field %s of type %s (GoMLX version changed?)", name, rv.Type())
	}
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(rv)
	return nil
}

// Builder wraps the XLA builder so that Compile keeps the program.
func (b *XLAGraphOnly) Builder(name string) backends.Builder {
	inner := b.Backend.Builder(name)
	xb, ok := inner.(*xla.Builder)
	if !ok {
		return inner
	}
	return &graphOnlyBuilder{Builder: inner, xb: xb, owner: b, name: name}
}

type graphOnlyBuilder struct {
	backends.Builder
	xb    *xla.Builder
	owner *XLAGraphOnly
	name  string
}

func (g *graphOnlyBuilder) Compile() (backends.Executable, error) {
	f := reflect.ValueOf(g.xb).Elem().FieldByName("builder")
	if !f.IsValid() || f.Type() != reflect.TypeOf((*stablehlo.Builder)(nil)) {
		return nil, errors.New("engine: xla.Builder has no field builder of type *stablehlo.Builder (GoMLX version changed?)")
	}
	sb := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(*stablehlo.Builder)
	program, err := sb.Build()
	if err != nil {
		return nil, fmt.Errorf("engine: StableHLO program %q: %w", g.name, err)
	}
	g.owner.mu.Lock()
	g.owner.built = append(g.owner.built, builtProgram{g.name, string(program)})
	g.owner.mu.Unlock()
	return nil, fmt.Errorf("%w (%q, %d bytes)", ErrGraphOnly, g.name, len(program))
}

// placeholder is a device buffer with a shape and no data.
type placeholder struct{ shape shapes.Shape }

func (b *XLAGraphOnly) HasSharedBuffers() bool { return false }

func (b *XLAGraphOnly) BufferFromFlatData(_ backends.DeviceNum, _ any, shape shapes.Shape) (backends.Buffer, error) {
	return &placeholder{shape}, nil
}

func (b *XLAGraphOnly) BufferShape(buf backends.Buffer) (shapes.Shape, error) {
	if p, ok := buf.(*placeholder); ok {
		return p.shape, nil
	}
	return shapes.Shape{}, errors.New("engine: graph-only XLA backend: not one of its buffers")
}

func (b *XLAGraphOnly) BufferDeviceNum(backends.Buffer) (backends.DeviceNum, error) { return 0, nil }

func (b *XLAGraphOnly) BufferFinalize(backends.Buffer) error { return nil }

func (b *XLAGraphOnly) BufferToFlatData(backends.Buffer, any) error { return ErrGraphOnly }

func (b *XLAGraphOnly) BufferCopyToDevice(src backends.Buffer, _ backends.DeviceNum) (backends.Buffer, error) {
	return src, nil
}

// Finalize leaves nothing to release: there is no plugin.
func (b *XLAGraphOnly) Finalize() {}

func (b *XLAGraphOnly) Description() string {
	return "xla:graph-only (StableHLO builder, no PJRT plugin)"
}

// Build runs fn, which should compile graphs on b (context.Exec.PreCompile,
// say), and returns the programs it built by builder name. The compile failure
// every graph ends in here (ErrGraphOnly, returned or panicked through
// GoMLX) is expected; any other failure is returned.
func (b *XLAGraphOnly) Build(fn func() error) (programs map[string]string, err error) {
	b.mu.Lock()
	start := len(b.built)
	b.mu.Unlock()
	err = Safe("graph-only XLA build", fn)
	if err != nil && !errors.Is(err, ErrGraphOnly) {
		return nil, err
	}
	programs = map[string]string{}
	b.mu.Lock()
	for _, p := range b.built[start:] {
		programs[p.name] = p.text
	}
	b.mu.Unlock()
	if len(programs) == 0 {
		return nil, errors.New("engine: graph-only XLA backend: no program was built")
	}
	return programs, nil
}

// MainArgs returns the arguments of a program's main function, "name: type"
// each (e.g. "%arg0: tensor<8x64xf32>", "%var__generator_dense_weights:
// tensor<64x4096xf32>"): the inputs and the variables the graph reads.
func MainArgs(program string) ([]string, error) {
	const head = "func.func @main("
	i := strings.Index(program, head)
	if i < 0 {
		return nil, errors.New("engine: program has no main function")
	}
	rest := program[i+len(head):]
	j := strings.Index(rest, ") -> ")
	if j < 0 {
		return nil, errors.New("engine: main's signature does not end")
	}
	var args []string
	for _, a := range strings.Split(rest[:j], ", %") {
		a = strings.TrimPrefix(strings.TrimSpace(a), "%")
		if a != "" {
			args = append(args, "%"+a)
		}
	}
	return args, nil
}
