package generator

import (
	"fmt"
	"image"
	"math"
	"path/filepath"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/dataset"
	"latentedit/engine"
	"latentedit/internal/artifact"
)

// Model is a loaded generator (and, for a VAE, its encoder).
type Model struct {
	Dir  string
	Info Info
	Arch Arch

	backend backends.Backend
	ctx     *context.Context

	prior *Prior // VAE: seeds' latents are drawn through it (nil: N(0, I))

	// A view in w or w+ (InSpace) has its frame and the model it was made
	// from; a root model keeps its views' shared state.
	frame *Frame
	root  *Model
	viewState

	gen, enc engine.LazyExec // built on first use
}

// Load reads the model directory dir and checks everything before returning:
// model.json's version and fields, the weights file's presence and checksum,
// and that every variable the architecture needs is there with its shape.
// Errors name the file and what is wrong.
func Load(dir string, backend backends.Backend) (*Model, error) {
	info, err := ReadInfo(dir)
	if err != nil {
		return nil, err
	}
	arch, err := info.Config.Arch()
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	wpath := filepath.Join(dir, WeightsFile)
	if err := artifact.CheckWeights(filepath.Join(dir, InfoFile), wpath, info.WeightsSHA256); err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	ctx := context.New()
	if _, err := engine.LoadCheckpoint(ctx, wpath); err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	if arch.Kind == ArchONNX {
		// The graph and its weights are the imported file itself.
		if arch.onnx, err = loadONNX(dir, info, backend, ctx); err != nil {
			return nil, fmt.Errorf("model %s: %w", dir, err)
		}
	}
	for v := range ctx.IterVariables() {
		v.SetTrainable(false) // a loaded generator is frozen: trainers downstream must not move it
	}
	prior, err := loadPrior(dir, info)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	m := &Model{Dir: dir, Info: info, Arch: arch, backend: backend, ctx: ctx, prior: prior}
	// Build once on one latent (and one image for a VAE) with a context that
	// refuses to create variables: a missing or reshaped weight fails here.
	err = engine.Safe("model "+dir+": "+wpath, func() error {
		if _, err := m.GenerateFloats(make([]float32, info.LatentDim), 1); err != nil {
			return err
		}
		if info.Kind == "vae" {
			_, err := m.EncodeFloats(make([]float32, info.Height*info.Width*info.Channels), 1)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("model %s: %s does not fit the architecture of model.json: %w", dir, wpath, err)
	}
	return m, nil
}

// On returns the model on another backend: the same weights (its context is
// shared, not copied) and executables of its own. Load checks a model by
// running it, which a backend that only builds programs
// (engine.XLAGraphOnly) cannot do; such tests load on the CPU and move the
// model.
func (m *Model) On(backend backends.Backend) *Model {
	if m.root != nil {
		root := m.root.On(backend)
		return &Model{Dir: m.Dir, Info: m.Info, Arch: m.Arch, backend: backend, ctx: m.ctx, prior: m.prior, frame: m.frame, root: root}
	}
	nm := &Model{Dir: m.Dir, Info: m.Info, Arch: m.Arch, backend: backend, ctx: m.ctx, prior: m.prior}
	if m.wFrame != nil { // carry a measured frame: a build-only backend cannot measure it again
		nm.frameOnce.Do(func() { nm.wFrame = m.wFrame })
	}
	return nm
}

// LatentDim is the length of a latent vector.
func (m *Model) LatentDim() int { return m.Info.LatentDim }

// ImageShape is the shape of generated images.
func (m *Model) ImageShape() (h, w, c int) { return m.Info.Height, m.Info.Width, m.Info.Channels }

// Backend is the backend the model runs on.
func (m *Model) Backend() backends.Backend { return m.backend }

// Context holds the frozen weights (scope /generator, and /encoder for a
// VAE). Trainers that need G inside their own graph (direction discovery)
// add their variables to it under their own scopes.
func (m *Model) Context() *context.Context { return m.ctx }

// Build is the graph-level generator: z [B, LatentDim] → images [B, H, W, C]
// in [-1, 1], with the frozen weights of Context.
func (m *Model) Build(ctx *context.Context, z *graph.Node) *graph.Node {
	if m.frame != nil {
		return m.buildCodes(ctx, z)
	}
	return m.Arch.Generate(ctx.InAbsPath("/generator").Reuse(), z)
}

// BuildEncode is the graph-level VAE encoder mean (the latent used to edit a
// real image).
func (m *Model) BuildEncode(ctx *context.Context, x *graph.Node) *graph.Node {
	mu, _ := m.Arch.Encode(ctx.InAbsPath("/encoder").Reuse(), x, false)
	return mu
}

// GenerateFloats maps n latents (flat, n×LatentDim) to n images, flat
// [n, H, W, C] in [-1, 1].
func (m *Model) GenerateFloats(z []float32, n int) ([]float32, error) {
	d := m.Info.LatentDim
	if n < 1 || len(z) != n*d {
		return nil, fmt.Errorf("generate: %d values for %d latents of dimension %d", len(z), n, d)
	}
	for i, v := range z {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("generate: latent value %d is %v", i, v)
		}
	}
	gen, err := m.gen.Get(func() (*context.Exec, error) {
		return context.NewExec(m.backend, m.ctx, func(ctx *context.Context, z *graph.Node) *graph.Node { return m.Build(ctx, z) })
	})
	if err != nil {
		return nil, err
	}
	// Chunks of 64 bound the memory of the convolution buffers (a 250-image
	// batch of the faces GAN needs over a gigabyte at the last layer). An
	// ONNX graph with a fixed batch runs padded chunks of that batch.
	chunk, pad := 64, false
	if m.Arch.onnx != nil && m.Arch.onnx.Batch > 0 {
		chunk, pad = m.Arch.onnx.Batch, true
	}
	out, err := engine.RunChunks("generate", gen, z, n, []int{d}, chunk, pad)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// flatLatents checks that every latent has d values and joins them into one
// [n, d] row-major slice; what names the caller in the error.
func flatLatents(what string, zs [][]float32, d int) ([]float32, error) {
	flat := make([]float32, 0, len(zs)*d)
	for i, z := range zs {
		if len(z) != d {
			return nil, fmt.Errorf("%s: latent %d has %d values, the model's has %d", what, i, len(z), d)
		}
		flat = append(flat, z...)
	}
	return flat, nil
}

// Generate maps latents to images.
func (m *Model) Generate(z [][]float32) ([]image.Image, error) {
	flat, err := flatLatents("generate", z, m.Info.LatentDim)
	if err != nil {
		return nil, err
	}
	pix, err := m.GenerateFloats(flat, len(z))
	if err != nil {
		return nil, err
	}
	return ToImages(pix, len(z), m.Info.Height, m.Info.Width, m.Info.Channels), nil
}

// ToImages splits flat [n, h, w, c] pixels in [-1, 1] into images.
func ToImages(pix []float32, n, h, w, c int) []image.Image {
	imgs := make([]image.Image, n)
	sz := h * w * c
	for i := range imgs {
		imgs[i] = dataset.FromFloats(pix[i*sz:(i+1)*sz], h, w, c)
	}
	return imgs
}

// EncodeFloats returns the VAE posterior means of n images (flat [n, H, W, C]
// in [-1, 1]).
func (m *Model) EncodeFloats(pix []float32, n int) ([]float32, error) {
	if m.Info.Kind != "vae" {
		return nil, fmt.Errorf("encode: model %s is a %s; only a VAE has an encoder (invert a GAN by optimisation instead)", m.Dir, m.Info.Kind)
	}
	h, w, c := m.ImageShape()
	if n < 1 || len(pix) != n*h*w*c {
		return nil, fmt.Errorf("encode: %d values for %d images of %dx%dx%d", len(pix), n, h, w, c)
	}
	enc, err := m.enc.Get(func() (*context.Exec, error) {
		return context.NewExec(m.backend, m.ctx, func(ctx *context.Context, x *graph.Node) *graph.Node { return m.BuildEncode(ctx, x) })
	})
	if err != nil {
		return nil, err
	}
	out, err := engine.RunChunks("encode", enc, pix, n, []int{h, w, c}, 64, false)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// Encode returns the latent of each image (VAE only); images must have the
// model's size.
func (m *Model) Encode(imgs []image.Image) ([][]float32, error) {
	h, w, c := m.ImageShape()
	pix := make([]float32, len(imgs)*h*w*c)
	for i, img := range imgs {
		if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
			return nil, fmt.Errorf("encode: image %d is %dx%d, the model takes %dx%d", i, b.Dx(), b.Dy(), w, h)
		}
		dataset.ToFloats(img, c, pix[i*h*w*c:(i+1)*h*w*c])
	}
	flat, err := m.EncodeFloats(pix, len(imgs))
	if err != nil {
		return nil, err
	}
	d := m.Info.LatentDim
	out := make([][]float32, len(imgs))
	for i := range out {
		out[i] = flat[i*d : (i+1)*d]
	}
	return out, nil
}

// FirstLayerWeights returns the weight matrix of G's first layer with one
// row per latent dimension (d × F): the layer computes z·W (SeFa's input).
func (m *Model) FirstLayerWeights() ([][]float32, error) {
	if m.frame != nil {
		return m.styleWeights()
	}
	if m.Arch.Kind == ArchONNX {
		return nil, fmt.Errorf("model %s: arch onnx: an ONNX graph has no first layer latentedit can identify (SeFa factorises its weights): use ganspace mode=latent or interfacegan", m.Dir)
	}
	scope := "/generator/" + m.Arch.firstLayerScope()
	v := m.ctx.GetVariableByScopeAndName(scope, "weights")
	if v == nil {
		return nil, fmt.Errorf("model %s: no first-layer weights %s/weights", m.Dir, scope)
	}
	t := v.MustValue()
	dims := t.Shape().Dimensions
	flat := tensors.MustCopyFlatData[float32](t)
	rows := make([][]float32, dims[0])
	for i := range rows {
		rows[i] = flat[i*dims[1] : (i+1)*dims[1]]
	}
	return rows, nil
}

// FirstLayerActivations returns G's first-layer outputs for the latents
// (GANSpace's PCA is taken there).
func (m *Model) FirstLayerActivations(z [][]float32) ([][]float32, error) {
	if m.frame != nil {
		return nil, fmt.Errorf("model %s in %s: a code's first layer is the synthesis' style affines; GANSpace in %s takes principal axes of the codes themselves: use ganspace mode=latent", m.Dir, m.Space(), m.Space())
	}
	if m.Arch.Kind == ArchONNX {
		return nil, fmt.Errorf("model %s: arch onnx: an ONNX graph has no first layer latentedit can identify (GANSpace's default mode=activations reads it): use ganspace mode=latent", m.Dir)
	}
	d := m.Info.LatentDim
	flat, err := flatLatents("first layer", z, d)
	if err != nil {
		return nil, err
	}
	var out []float32
	var f int
	err = engine.Safe("first layer", func() error {
		res, err := context.ExecOnce(m.backend, m.ctx, func(ctx *context.Context, z *graph.Node) *graph.Node {
			return m.Arch.FirstLayer(ctx.InAbsPath("/generator").Reuse(), z)
		}, tensors.FromFlatDataAndDimensions(flat, len(z), d))
		if err != nil {
			return err
		}
		f = res.Shape().Dimensions[1]
		out = tensors.MustCopyFlatData[float32](res)
		return nil
	})
	if err != nil {
		return nil, err
	}
	rows := make([][]float32, len(z))
	for i := range rows {
		rows[i] = out[i*f : (i+1)*f]
	}
	return rows, nil
}

// GenerateChunked renders the latents zs in fixed chunks of chunk latents,
// the last one padded with zeros: every latent goes through a graph of the
// same batch size however many are asked for, so its pixels do not depend
// on the call (the pure-Go backend's last bits change with the batch size;
// shards and whole runs must agree byte for byte).
func (m *Model) GenerateChunked(zs [][]float32, chunk int) ([]float32, error) {
	if chunk < 1 {
		return nil, fmt.Errorf("generate: chunk %d", chunk)
	}
	d := m.LatentDim()
	h, w, c := m.ImageShape()
	sz := h * w * c
	out := make([]float32, 0, len(zs)*sz)
	for s := 0; s < len(zs); s += chunk {
		e := min(len(zs), s+chunk)
		flat := make([]float32, chunk*d)
		for i := s; i < e; i++ {
			if len(zs[i]) != d {
				return nil, fmt.Errorf("generate: latent %d has %d values, want %d", i, len(zs[i]), d)
			}
			copy(flat[(i-s)*d:], zs[i])
		}
		pix, err := m.GenerateFloats(flat, chunk)
		if err != nil {
			return nil, err
		}
		out = append(out, pix[:(e-s)*sz]...)
	}
	return out, nil
}
