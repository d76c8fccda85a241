// Package kernels holds engine's fast CPU kernels for GoMLX's pure-Go
// backend (simplego): replacements of simplego's executors for the ops our
// training steps spend their time in (DotGeneral through a native sgemm,
// ConvGeneral through oneDNN's convolution primitives, and the broadcasts,
// slices, pads, concatenations, gathers and reductions around them), the one
// mechanism that installs them into simplego's executor table, the native
// libraries they open, and the op profiler. Only engine imports it: graphs,
// gradients and the XLA backend never see it, and docs/engine.md has the
// rules the native half keeps.
package kernels

import "strings"

// GoOptions completes the pure-Go backend's options (comma separated, as
// after "go:") for these kernels, and installs the op profiler when asked
// for (EnvOpProfile): ops run one at a time, because simplego's parallel op
// scheduler deadlocks (GOMLX-NOTES trap 6, seen with two cores too; only an
// explicit ops_parallel asks for it), and DotGeneral operands stay untiled
// so the native sgemm can take them (fastdot.go).
func GoOptions(opts string) string {
	add := func(o string) {
		if opts != "" {
			opts += ","
		}
		opts += o
	}
	if !strings.Contains(opts, "ops_sequential") && !strings.Contains(opts, "ops_parallel") {
		add("ops_sequential")
	}
	if extra := BackendOption(); extra != "" && !strings.Contains(opts, "dotgeneral_") {
		add(extra)
	}
	InstallOpProfile()
	return opts
}

// The three axis layouts of the ConvGeneral nodes engine.nativeConv2D builds,
// the ones execFastConv runs natively
// (NHWC activations, HWIO kernels), as
// InputBatch, InputChannels, InputSpatial×2, KernelInputChannels,
// KernelOutputChannels, KernelSpatial×2, OutputBatch, OutputChannels,
// OutputSpatial×2.
var (
	ConvAxesForward = [12]int{0, 3, 1, 2, 2, 3, 0, 1, 0, 3, 1, 2}
	ConvAxesData    = [12]int{0, 3, 1, 2, 3, 2, 0, 1, 0, 3, 1, 2} // dy ⊛ reversed kernel, channels swapped
	ConvAxesWeights = [12]int{3, 0, 1, 2, 0, 3, 1, 2, 2, 3, 0, 1} // x ⊛ dy over the batch
)
