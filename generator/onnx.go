package generator

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"

	"github.com/gomlx/exceptions"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/onnx-gomlx/onnx"
	"github.com/gomlx/onnx-gomlx/onnx/parser"

	"latentedit/engine"
	"latentedit/internal/artifact"
)

// An ONNX generator (import-only): the graph of an .onnx file, kept byte for
// byte in the model directory (ONNXFile, its sha256 in model.json's
// source), converted to GoMLX ops by github.com/gomlx/onnx-gomlx when the
// model is loaded. Its weights are the file's initializers, uploaded to the
// context under /generator/ONNX; generator/weights.ckpt holds no variables.
//
//	z [B, L] ─the ONNX graph─▶ [B, C, H, W] ─NHWC─▶ (output range → [-1, 1]) ─clamp to [-1, 1]─▶ images
//
// The converter's convolutions take their gradient from GoMLX's stock conv
// gradient, which is wrong for even kernels and crashes on the pure-Go
// backend (GOMLX-NOTES traps 1–2): an ONNX generator is run, never
// differentiated (Model.Differentiable refuses).
const (
	ArchONNX = "onnx"
	ONNXFile = "generator/model.onnx"
)

// ONNXGraph is a parsed ONNX generator and the facts read from its graph.
type ONNXGraph struct {
	model onnx.Model

	Input, Output string
	// Latent, Size and Channels come from the input [B, L] and output
	// [B, C, S, S] shapes; Batch is the input's batch dimension when the
	// graph fixes it (0 when symbolic: any batch).
	Latent, Size, Channels, Batch int
}

// ReadONNX parses an ONNX generator file, uploads its weights to ctx under
// /generator and reads its shapes: one float32 input [B, L] with L fixed,
// B fixed or symbolic, and one float32 output [B, C, S, S] (PyTorch's NCHW)
// with C 1 or 3. The output's shape is that of the graph built on backend
// for one batch (torch.onnx.export with a symbolic batch often declares
// [batch, C, ?, ?]); declared dimensions must agree with it. The graph's ops
// are not checked here (interop does, before calling it).
func ReadONNX(path string, backend backends.Backend, ctx *context.Context) (*ONNXGraph, error) {
	m, err := parser.ParseFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnx %s: %w", path, err)
	}
	g := &ONNXGraph{model: m}
	inNames, inShapes := m.Inputs()
	outNames, outShapes := m.Outputs()
	if len(inNames) != 1 || len(outNames) != 1 {
		return nil, fmt.Errorf("onnx %s: the graph has inputs %q and outputs %q: a generator takes one input (the latent z [batch, L]) and gives one output (images [batch, C, H, W])", path, inNames, outNames)
	}
	g.Input, g.Output = inNames[0], outNames[0]
	in, out := inShapes[0], outShapes[0]
	if in.DType != dtypes.Float32 || out.DType != dtypes.Float32 {
		return nil, fmt.Errorf("onnx %s: input %q is %s and output %q is %s: both must be float32", path, g.Input, in.DType, g.Output, out.DType)
	}
	dyn := func(d int) string {
		if d == onnx.DynamicDim {
			return "?"
		}
		return fmt.Sprint(d)
	}
	shape := func(dims []int) string {
		s := "["
		for i, d := range dims {
			if i > 0 {
				s += ", "
			}
			s += dyn(d)
		}
		return s + "]"
	}
	if in.Rank() != 2 || in.Dimensions[1] < 1 {
		return nil, fmt.Errorf("onnx %s: input %q has shape %s: want [batch, L] with a fixed latent dimension L", path, g.Input, shape(in.Dimensions))
	}
	g.Latent = in.Dimensions[1]
	if out.Rank() != 4 {
		return nil, fmt.Errorf("onnx %s: output %q has shape %s: want images [batch, C, H, W] (NCHW, as PyTorch exports)", path, g.Output, shape(out.Dimensions))
	}
	batch := 1
	if b := in.Dimensions[0]; b != onnx.DynamicDim {
		if b < 1 {
			return nil, fmt.Errorf("onnx %s: input %q has batch %d", path, g.Input, b)
		}
		g.Batch, batch = b, b
	}
	if err := g.model.VariablesToContext(ctx.InAbsPath("/generator")); err != nil {
		return nil, fmt.Errorf("onnx %s: weights: %w", path, err)
	}
	// Build (not run) the graph for one batch to learn the output's shape.
	var d []int
	err = engine.Safe("onnx "+path+": build the graph", func() error {
		gr := graph.NewGraph(backend, "onnx_shape")
		defer gr.Finalize()
		z := graph.Parameter(gr, "z", shapes.Make(dtypes.Float32, batch, g.Latent))
		y := g.model.CallGraph(ctx.InAbsPath("/generator").Reuse(), gr, map[string]*graph.Node{g.Input: z}, g.Output)[0]
		d = y.Shape().Dimensions
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, want := range out.Dimensions {
		if want != onnx.DynamicDim && i < len(d) && d[i] != want {
			return nil, fmt.Errorf("onnx %s: output %q is declared %s but the graph makes %v for a batch of %d", path, g.Output, shape(out.Dimensions), d, batch)
		}
	}
	switch {
	case len(d) != 4 || d[0] != batch:
		return nil, fmt.Errorf("onnx %s: output %q has shape %v for a batch of %d: want images [batch, C, H, W] (NCHW, as PyTorch exports)", path, g.Output, d, batch)
	case d[1] != 1 && d[1] != 3:
		return nil, fmt.Errorf("onnx %s: output %q has shape %v: want 1 or 3 channels on axis 1 (NCHW, as PyTorch exports)", path, g.Output, d)
	case d[2] != d[3]:
		return nil, fmt.Errorf("onnx %s: output %q has shape %v: latentedit's images are square (H = W)", path, g.Output, d)
	}
	g.Channels, g.Size = d[1], d[2]
	return g, nil
}

// loadONNX checks dir's ONNX file against model.json (sha256 and shapes)
// and uploads its weights to ctx under /generator.
func loadONNX(dir string, info Info, backend backends.Backend, ctx *context.Context) (*ONNXGraph, error) {
	path := filepath.Join(dir, ONNXFile)
	spec := filepath.Join(dir, InfoFile)
	if info.Source == nil || len(info.Source.SHA256) != 64 {
		return nil, fmt.Errorf("%s: field source.sha256: an onnx model records the sha256 of %s there", spec, ONNXFile)
	}
	sum, err := artifact.FileSHA256(path)
	if err != nil {
		return nil, err
	}
	if sum != info.Source.SHA256 {
		return nil, fmt.Errorf("%s: sha256 %s does not match %s's source.sha256 %s (file truncated, corrupted or replaced)", path, sum[:12], spec, info.Source.SHA256[:12])
	}
	g, err := ReadONNX(path, backend, ctx)
	if err != nil {
		return nil, err
	}
	if g.Latent != info.LatentDim || g.Size != info.Height || g.Channels != info.Channels {
		return nil, fmt.Errorf("%s: latent %d, images %dx%dx%d, but %s says latent %d, %dx%dx%d", path, g.Latent, g.Size, g.Size, g.Channels, spec, info.LatentDim, info.Height, info.Width, info.Channels)
	}
	return g, nil
}

// generateONNX runs the ONNX graph on z [B, L] and returns images
// [B, S, S, C] in [-1, 1].
func (a Arch) generateONNX(ctx *context.Context, z *graph.Node) *graph.Node {
	if a.onnx == nil {
		exceptions.Panicf("arch onnx: no graph (generator.Load reads %s)", ONNXFile)
	}
	out := a.onnx.model.CallGraph(ctx, z.Graph(), map[string]*graph.Node{a.onnx.Input: z}, a.onnx.Output)[0]
	b := z.Shape().Dimensions[0]
	if want := []int{b, a.Channels, a.Size, a.Size}; !slices.Equal(out.Shape().Dimensions, want) {
		exceptions.Panicf("arch onnx: output %q has shape %v for a batch of %d, want %v", a.onnx.Output, out.Shape().Dimensions, b, want)
	}
	x := graph.TransposeAllDims(out, 0, 2, 3, 1) // NCHW → NHWC
	return clampUnit(a.toUnitRange(x))
}

// toUnitRange maps a generator output in [LO, HI] (OutputRange) to [-1, 1]:
// 2·(x−LO)/(HI−LO)−1; x itself without a range.
func (a Arch) toUnitRange(x *graph.Node) *graph.Node {
	if len(a.OutputRange) != 2 {
		return x
	}
	lo, hi := a.OutputRange[0], a.OutputRange[1]
	return graph.AddScalar(graph.MulScalar(graph.AddScalar(x, -lo), 2/(hi-lo)), -1)
}

// clampUnit clamps to [-1, 1] (Max/Min: Clamp has no gradient in GoMLX
// v0.27.2).
func clampUnit(x *graph.Node) *graph.Node { return graph.MinScalar(graph.MaxScalar(x, -1), 1) }

// ValidateOutputRange checks an output range [LO, HI]: two finite numbers,
// LO < HI.
func ValidateOutputRange(r []float64) error {
	if len(r) != 2 {
		return fmt.Errorf("output_range %v: want two numbers [LO, HI]", r)
	}
	for _, v := range r {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("output_range [%g, %g]: LO and HI must be finite", r[0], r[1])
		}
	}
	if r[0] >= r[1] {
		return fmt.Errorf("output_range [%g, %g]: LO must be below HI", r[0], r[1])
	}
	return nil
}

// RangeArchs are the architectures whose output has no tanh, so that an
// output range can be given (the others' tanh fixes [-1, 1]).
var RangeArchs = []string{ArchStyleGAN2, ArchONNX}

// ErrNoGradient is why an ONNX generator is never differentiated.
var ErrNoGradient = errors.New("arch onnx: the ONNX converter's convolutions take GoMLX's stock conv gradient, which is wrong for even kernels and crashes on the pure-Go backend (GOMLX-NOTES traps 1–2); this needs gradients through the generator: use the closed-form methods (ganspace mode=latent, interfacegan), sample, edit and evaluate")

// Differentiable reports whether gradients may be taken through the
// generator (learned discovery, inversion of a given image): an error for an
// ONNX generator, nil otherwise.
func (m *Model) Differentiable() error {
	if m.Arch.Kind == ArchONNX {
		return fmt.Errorf("model %s: %w", m.Dir, ErrNoGradient)
	}
	return nil
}
