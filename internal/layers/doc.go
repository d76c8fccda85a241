// Package layers holds the house's dependency order as data, and the test
// that keeps the code to it (docs/architecture.md explains the order). It
// has no code of its own: a package that nothing imports.
package layers

// Order lists the project's packages from the bottom up, by layer: a package
// may import only packages of lower layers, never one of its own layer or
// above. A new package goes into the layer that matches what it imports
// and what imports it; the test fails until it is listed.
var Order = [][]string{
	{"internal/atomicfile", "internal/progress", "internal/mixture", "internal/pngtest", "dataset", "dataset/idx", "engine/internal/kernels", "interop/tensorfile"},
	{"engine", "models", "dataset/export", "dataset/faces", "dataset/folder", "dataset/fundus", "dataset/mnist"},
	{"internal/figure", "internal/artifact"},
	{"train"},
	{"train/killtest"},
	{"generator"},
	{"edit", "invert"},
	{"discover", "evaluate", "interop"},
	{"workspace"},
	{"report/editgrid"},
	{"report/study"},
	{"pseudocase", "server"},
	{"cmd/latentedit", "bench/dnorm"},
}
