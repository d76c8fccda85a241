package invert

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
	"latentedit/generator"
	"latentedit/internal/artifact"
)

// Files of an encoder directory (WORK/encoder-SPACE/): the spec and its
// checksummed weights (artifact.Files), and the training run's state,
// config and curves beside them for --resume.
const (
	EncoderSpec    = "encoder.json"
	EncoderWeights = "encoder.ckpt"
	EncoderFormat  = 1
	EncoderKind    = "encoder"
	// encScope holds the encoder's variables (not /encoder: a VAE's own
	// encoder lives there in the model's context, where training adds these).
	encScope = "/inverter"
)

// EncoderDirName is the name of the directory of an encoder for space s
// (encoder-z, encoder-w, encoder-wplus: no "+" in a path).
func EncoderDirName(space string) string {
	return "encoder-" + strings.ReplaceAll(space, "+", "plus")
}

// LocateEncoder finds the encoder for space under the first of roots (a
// model's work folder, then its shipped files) that has one; ok is false
// when none does, and dir is then where a new one goes (under roots[0]).
func LocateEncoder(space string, roots ...string) (dir string, ok bool) {
	for _, r := range roots {
		if r == "" {
			continue
		}
		d := filepath.Join(r, EncoderDirName(space))
		if _, err := os.Stat(filepath.Join(d, EncoderSpec)); err == nil {
			return d, true
		}
	}
	return filepath.Join(roots[0], EncoderDirName(space)), false
}

// Score is an encoder's fidelity on latents it never saw in training.
type Score struct {
	N         int     `json:"n"`
	LatentMSE float64 `json:"latent_mse"` // mean squared error of the predicted latent (code)
	PSNR      float64 `json:"psnr_db"`    // of G(E(G(z))) against G(z)
}

// Encoder is a trained image → latent network for one generator and one of
// its spaces: the initial guess of an inversion.
type Encoder struct {
	FormatVersion int     `json:"format_version"`
	Kind          string  `json:"kind"`
	WeightsSHA256 string  `json:"weights_sha256"`
	Space         string  `json:"space"`
	LatentDim     int     `json:"latent_dim"`
	Height        int     `json:"height"`
	Width         int     `json:"width"`
	Channels      int     `json:"channels"`
	ModelSHA256   string  `json:"model_weights_sha256"` // the generator it was trained for
	Base          int     `json:"base"`                 // channels of the first convolution
	Hidden        int     `json:"hidden"`
	Steps         int     `json:"steps"`
	Recon         float64 `json:"recon"` // weight of the real-image reconstruction loss in training
	HeldOut       *Score  `json:"held_out,omitempty"`

	ctx *context.Context
	be  backends.Backend
	run engine.LazyExec
}

// net is the encoder: a 3×3 stem, 3×3 stride-2 convolutions (odd kernels
// only: GOMLX-NOTES trap 1) doubling the width up to 8·Base while the side
// is above 4, a dense hidden layer and a linear head of LatentDim values,
// leaky ReLU (0.2) between.
func (e *Encoder) net(ctx *context.Context, x *graph.Node) *graph.Node {
	b := x.Shape().Dimensions[0]
	x = engine.LeakyReLU(engine.Conv(ctx.In("stem"), x).Filters(e.Base).Kernel(3).Done(), 0.2)
	w := e.Base
	for i := 0; x.Shape().Dimensions[1] > 4; i++ {
		w = min(2*w, 8*e.Base)
		x = engine.LeakyReLU(engine.Conv(ctx.Inf("down%d", i), x).Filters(w).Kernel(3).Stride(2).Pad(1).Done(), 0.2)
	}
	d := x.Shape().Dimensions
	h := engine.LeakyReLU(engine.Dense(ctx.In("hidden"), graph.Reshape(x, b, d[1]*d[2]*d[3]), e.Hidden, true), 0.2)
	return engine.Dense(ctx.In("head"), h, e.LatentDim, true)
}

// build is the encoder's graph with its variables in ctx's encScope.
func (e *Encoder) build(ctx *context.Context, x *graph.Node) *graph.Node {
	return e.net(ctx.InAbsPath(encScope), x)
}

// Encode returns the guessed latents of n pictures (flat [n, H, W, C] in
// [-1, 1]), flat [n, LatentDim].
func (e *Encoder) Encode(pix []float32, n int) ([]float32, error) {
	sz := e.Height * e.Width * e.Channels
	if n < 1 || len(pix) != n*sz {
		return nil, fmt.Errorf("encoder: %d values for %d pictures of %dx%dx%d", len(pix), n, e.Height, e.Width, e.Channels)
	}
	exec, err := e.run.Get(func() (*context.Exec, error) {
		return context.NewExec(e.be, e.ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
			return e.build(ctx.Reuse(), x)
		})
	})
	if err != nil {
		return nil, err
	}
	var out [][]float32
	err = engine.Safe("encoder", func() error {
		var err error
		out, err = engine.RunChunks("encoder", exec, pix, n, []int{e.Height, e.Width, e.Channels}, 64, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, v := range out[0] {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("encoder: latent value %d is %v", i, v)
		}
	}
	return out[0], nil
}

func encFiles(dir string) artifact.Files {
	return artifact.Files{Dir: dir, Spec: EncoderSpec, Weights: EncoderWeights, Kind: EncoderKind, Format: EncoderFormat}
}

// save writes the encoder's weights (scope encScope of ctx) and then its
// spec, each atomically.
func (e *Encoder) save(dir string, ctx *context.Context) error {
	return encFiles(dir).Save(ctx, encScope, map[string]string{"kind": EncoderKind}, e, func(format int, kind, sha string) {
		e.FormatVersion, e.Kind, e.WeightsSHA256 = format, kind, sha
	})
}

// LoadEncoder reads the encoder in dir for model m (seen in the space the
// encoder was trained for). It refuses, naming the file and the field, a
// spec of another format or kind, weights whose sha256 is not the spec's, an
// encoder of another generator (model_weights_sha256), space or shape, and
// weights that do not fit the spec's network.
func LoadEncoder(dir string, m *generator.Model) (*Encoder, error) {
	f := encFiles(dir)
	e := &Encoder{}
	ctx, _, err := f.Load(e, func() (int, string, string) { return e.FormatVersion, e.Kind, e.WeightsSHA256 })
	if err != nil {
		return nil, err
	}
	spec := f.SpecPath()
	h, w, c := m.ImageShape()
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("encoder: %s: field %s: %s", spec, field, fmt.Sprintf(format, args...))
	}
	switch {
	case e.ModelSHA256 != m.Info.WeightsSHA256:
		return nil, bad("model_weights_sha256", "%.12s…: the encoder was trained for another generator than %s (%.12s…); train one for it (latentedit invert --train-encoder)", e.ModelSHA256, m.Dir, m.Info.WeightsSHA256)
	case e.Space != m.Space():
		return nil, bad("space", "%q, the model is seen in %s", e.Space, m.Space())
	case e.LatentDim != m.LatentDim():
		return nil, bad("latent_dim", "%d, the model's %s has %d", e.LatentDim, m.Space(), m.LatentDim())
	case e.Height != h || e.Width != w || e.Channels != c:
		return nil, bad("height/width/channels", "%dx%dx%d, the model draws %dx%dx%d", e.Height, e.Width, e.Channels, h, w, c)
	case e.Base < 1 || e.Base > 256 || e.Hidden < 1 || e.Hidden > 8192:
		return nil, bad("base/hidden", "%d and %d out of [1, 256] and [1, 8192]", e.Base, e.Hidden)
	}
	e.ctx, e.be = ctx, m.Backend()
	// Run once on a blank picture with a context that refuses new
	// variables: missing or reshaped weights fail here, not mid-run.
	e.ctx = e.ctx.Checked(true)
	if _, err := e.Encode(make([]float32, h*w*c), 1); err != nil {
		return nil, fmt.Errorf("encoder: %s does not fit %s: %w", f.WeightsPath(), spec, err)
	}
	return e, nil
}
