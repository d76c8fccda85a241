//go:build cgo && !noblas

package kernels

// Controls for engine's tests, which drive the kernels through the graphs
// engine builds (its convolutions and matmuls with their own gradients).

// ConvReason says why oneDNN's convolutions are not installed ("" when they are).
func ConvReason() string { return fastConv.reason }

// DotInstalled reports whether DotGeneral runs through a native sgemm.
func DotInstalled() bool { return fastDot.installed }

// DotReason says why the native sgemm is not installed ("" when it is).
func DotReason() string { return fastDot.reason }

// StockOnly reports whether EnvKernels=stock keeps every stock executor.
func StockOnly() bool { return stockKernelsOnly() }

// SetConvNative switches ConvGeneral between oneDNN (true) and simplego.
func SetConvNative(on bool) { fastConv.on.Store(on) }

// SetDotNative switches DotGeneral between the native sgemm (true) and simplego.
func SetDotNative(on bool) { fastDot.on.Store(on) }

// ConvCounts are the convolutions run through oneDNN and those oneDNN
// refused that simplego ran instead.
func ConvCounts() (native, fallbacks int64) { return fastConv.calls.Load(), fastConv.fallbacks.Load() }

// DotCalls is the DotGenerals run through the native sgemm.
func DotCalls() int64 { return fastDot.calls.Load() }

// NodePlans is the number of per-node plans kept (convolutions and matmuls).
func NodePlans() int64 { return fastConv.plans.n.Load() + fastDot.plans.n.Load() }

// RefuseConvs makes oneDNN's plans of the geometries refuse reports (kind 0
// forward, 1 backward-data, 2 backward-weights; c input and f output
// channels) refused, as if oneDNN had refused them; restore undoes it.
func RefuseConvs(refuse func(kind, c, f int) bool) (restore func()) {
	dnnl.mu.Lock()
	dnnlRefuse = func(g dnnlGeom) bool { return refuse(g.kind, g.c, g.f) }
	dnnl.mu.Unlock()
	return func() {
		dnnl.mu.Lock()
		dnnlRefuse = nil
		dnnl.mu.Unlock()
	}
}
