// Package engine is latentedit's thin layer over GoMLX: it picks the backend
// (pure-Go CPU by default, XLA/PJRT on a GPU), and owns the few layers whose
// stock GoMLX versions are wrong or slow on our engine version (see
// shared/GOMLX-NOTES.md): convolution with a correct gradient for every kernel
// size, a matmul whose gradient does not build an M×N×K intermediate, batch
// norm that trains on the pure-Go backend, nearest upsampling, Adam, the
// finite-difference gradient checker every owned layer is tested with, and
// atomic, checksummed checkpoints.
//
// No other package should call graph.ConvGeneral, batchnorm or the stock
// checkpoints directly: the traps are handled here, once.
package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego" // the pure-Go CPU backend, always available

	"latentedit/engine/internal/kernels"
)

// EnvBackend is the environment variable read when no --backend flag is given.
const EnvBackend = "GOMLX_BACKEND"

// DefaultCPU is the configuration of the pure-Go backend we use by default.
// packgemm is the fastest matmul path measured on our 2-core machines.
// ops_sequential runs one op at a time (each matmul still uses every core):
// with ops in parallel, simplego's worker pool deadlocks when several
// matmuls wait for pool slots held by each other — seen here on 2 cores, a
// discovery run hung for minutes with four DotGeneral tasks in WaitToStart.
const DefaultCPU = "go:packgemm,ops_sequential"

// xlaCompiled is set by xla.go when the binary is built with `-tags xla`.
var xlaCompiled bool

// NewBackend returns the backend named by config, or by $GOMLX_BACKEND when
// config is empty, or the pure-Go CPU backend when both are empty.
//
// Accepted forms: "go" (options after a colon, comma separated, e.g.
// "go:packgemm,ops_sequential") and "xla:/abs/path/to/pjrt_plugin.so". A
// relative plugin name is refused because GoMLX would then try to download a
// plugin, and latentedit never downloads anything at run time.
func NewBackend(config string) (b backends.Backend, err error) {
	if config == "" {
		config = os.Getenv(EnvBackend)
	}
	if config == "" || config == "cpu" {
		config = DefaultCPU
	}
	name, opts, _ := strings.Cut(config, ":")
	switch name {
	case "go":
		opts = kernels.GoOptions(opts)
		config = "go:" + opts
		if opts == "" {
			config = "go"
		}
	case "xla", "stablehlo", "hlo", "shlo":
		if !xlaCompiled {
			return nil, fmt.Errorf("backend %q: this binary was built without XLA support; rebuild with `CGO_ENABLED=1 go build -tags xla`", config)
		}
		plugin, _, _ := strings.Cut(opts, ",")
		if !filepath.IsAbs(plugin) {
			return nil, fmt.Errorf("backend %q: give the absolute path of the PJRT plugin (xla:/abs/path/pjrt_plugin.so); latentedit never downloads one", config)
		}
		if _, err := os.Stat(plugin); err != nil {
			return nil, fmt.Errorf("backend %q: plugin: %w", config, err)
		}
		config = "xla:" + opts
	default:
		return nil, fmt.Errorf("backend %q: unknown backend %q (use \"go\" for the CPU or \"xla:/abs/path/plugin.so\" for a GPU)", config, name)
	}
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("backend %q: %v", config, r)
		}
	}()
	b, err = backends.NewWithConfig(config)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", config, err)
	}
	return b, nil
}
