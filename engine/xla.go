//go:build xla

package engine

import _ "github.com/gomlx/gomlx/backends/xla" // PJRT plugins (GPU); needs cgo

func init() { xlaCompiled = true }
