//go:build !cgo || noblas

package kernels

import "time"

// Without cgo (or with -tags noblas) the pure-Go backend runs its own
// matmuls; see fastdot.go for the OpenBLAS path.

// CPUKernels describes how the pure-Go backend runs matmuls in this binary.
func CPUKernels() string { return "pure-Go DotGeneral (built without cgo or with -tags noblas)" }

func BackendOption() string { return "" }

// MatMulTime is the wall time spent in native sgemm calls: none in this build.
func MatMulTime() time.Duration { return 0 }
