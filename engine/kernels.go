package engine

import (
	"time"

	"latentedit/engine/internal/kernels"
)

// The CPU kernels live in engine/internal/kernels; these are the parts of
// them the rest of the project reads.

// EnvKernels, set to "stock", keeps simplego's own executors (and its own
// matmuls) even where faster ones are available; set to "openblas", it
// prefers OpenBLAS to oneDNN for the matmuls. For comparisons.
const EnvKernels = kernels.EnvKernels

// EnvOpProfile, set to "1", times every op the pure-Go backend runs (see
// OpProfile).
const EnvOpProfile = kernels.EnvOpProfile

// CPUKernels describes how the pure-Go backend runs matmuls in this binary,
// for logs and benchmark reports.
func CPUKernels() string { return kernels.CPUKernels() }

// ConvTime is the wall time this process has spent in oneDNN convolutions
// (zero without them): benchmarks report its share of a step.
func ConvTime() time.Duration { return kernels.ConvTime() }

// MatMulTime is the wall time this process has spent in native sgemm calls
// (zero without them).
func MatMulTime() time.Duration { return kernels.MatMulTime() }

// OpProfile is the table of the n most expensive (op, shape) pairs per
// step of perStep steps, since the last call (with EnvOpProfile=1; "" otherwise).
func OpProfile(n, perStep int) string { return kernels.OpProfile(n, perStep) }
