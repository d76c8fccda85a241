//go:build xla

package engine

import "github.com/gomlx/gomlx/backends/xla" // PJRT plugins (GPU); needs cgo

func init() {
	xlaCompiled = true
	// latentedit never downloads a plugin. Set here, not through
	// GOMLX_NO_AUTO_INSTALL: the xla package reads that variable in its own
	// init, before NewBackend could set it, and setting the environment of a
	// running cgo process races with C code reading it.
	xla.EnableAutoInstall(false)
}
