package invert

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/dataset"
	"latentedit/engine"
	"latentedit/generator"
	"latentedit/internal/atomicfile"
	"latentedit/train"
)

// TrainConfigFile is the run's settings in the encoder directory: what
// --resume rebuilds the trainer from.
const TrainConfigFile = "train.json"

// TrainConfig defines an encoder training run. Zero fields take defaults.
type TrainConfig struct {
	Space           string  `json:"space"`
	Steps           int     `json:"steps"`            // default 2000
	Batch           int     `json:"batch"`            // default 32
	LR              float64 `json:"lr"`               // Adam, default 1e-3
	Base            int     `json:"base"`             // default 16
	Hidden          int     `json:"hidden"`           // default 512
	Recon           float64 `json:"recon"`            // weight of the real-image reconstruction loss (0: none)
	Seed            int64   `json:"seed"`             // default 1
	CheckpointEvery int     `json:"checkpoint_every"` // default Steps/20
	HeldOut         int     `json:"held_out"`         // latents the finished encoder is scored on (default 256)
}

func (c *TrainConfig) defaults() error {
	c.Steps = cmp.Or(c.Steps, 2000)
	c.Batch = cmp.Or(c.Batch, 32)
	c.LR = cmp.Or(c.LR, 1e-3)
	c.Base = cmp.Or(c.Base, 16)
	c.Hidden = cmp.Or(c.Hidden, 512)
	c.Seed = cmp.Or(c.Seed, 1)
	c.CheckpointEvery = cmp.Or(c.CheckpointEvery, max(1, c.Steps/20))
	c.HeldOut = cmp.Or(c.HeldOut, 256)
	switch {
	case c.Steps < 1 || c.Batch < 2 || !(c.LR > 0) || c.Base < 1 || c.Base > 256 || c.Hidden < 1 || c.Hidden > 8192:
		return fmt.Errorf("encoder: steps %d (≥1), batch %d (≥2), lr %g (>0), base %d ([1, 256]), hidden %d ([1, 8192])", c.Steps, c.Batch, c.LR, c.Base, c.Hidden)
	case c.Recon < 0 || c.CheckpointEvery < 1 || c.HeldOut < 1:
		return fmt.Errorf("encoder: recon %g (≥0), checkpoint every %d (≥1), held out %d (≥1)", c.Recon, c.CheckpointEvery, c.HeldOut)
	}
	return nil
}

// TrainOptions are run-time settings of TrainEncoder.
type TrainOptions struct {
	Dir    string // the encoder directory (WORK/encoder-SPACE)
	Resume bool   // continue the run in Dir (its train.json, its state)
	Log    io.Writer
	JSON   bool
}

// optimName is the encoder's Adam (state under /optim/inverter).
const optimName = "inverter"

// TrainEncoder trains an encoder for m (in the space it is seen in) on
// pictures the generator draws from latents it is given: the encoder reads
// G(z) and regresses z (the code, in W or W+), a mean squared error. With
// Recon > 0 it also reads pictures of the model's training data and is
// asked, through the frozen generator, to reproduce them (pixel MSE × Recon).
// The run goes through train.Loop (progress, --json, atomic checkpoints of
// the encoder and its optimiser, --resume, a stop on NaN); every
// checkpoint also writes the encoder's spec and weights, so a killed run
// leaves a usable encoder. At the end the encoder is scored on latents of
// another stream (Encoder.HeldOut) and saved again.
func TrainEncoder(m *generator.Model, cfg TrainConfig, opt TrainOptions) (*Encoder, *train.Result, error) {
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	if opt.Dir == "" {
		return nil, nil, fmt.Errorf("encoder: no directory")
	}
	if opt.Resume {
		raw, err := os.ReadFile(filepath.Join(opt.Dir, TrainConfigFile))
		if err != nil {
			return nil, nil, fmt.Errorf("encoder --resume: %w", err)
		}
		steps := cfg.Steps
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, nil, fmt.Errorf("encoder --resume: %s: %w", filepath.Join(opt.Dir, TrainConfigFile), err)
		}
		cfg.Steps = max(cfg.Steps, steps)
		if cfg.Space != m.Space() {
			return nil, nil, fmt.Errorf("encoder --resume: %s: the run trains in %s, the model was given in %s (--space %s)", filepath.Join(opt.Dir, TrainConfigFile), cfg.Space, m.Space(), cfg.Space)
		}
	}
	cfg.Space = m.Space()
	if err := cfg.defaults(); err != nil {
		return nil, nil, err
	}
	if err := m.Differentiable(); err != nil && cfg.Recon > 0 {
		return nil, nil, fmt.Errorf("encoder: the reconstruction loss descends through G: %w", err)
	}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("encoder: %w", err)
	}
	raw, _ := json.MarshalIndent(cfg, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(opt.Dir, TrainConfigFile), append(raw, '\n'), atomicfile.DefaultPerm); err != nil {
		return nil, nil, err
	}
	h, w, c := m.ImageShape()
	d := m.LatentDim()
	e := &Encoder{Space: m.Space(), LatentDim: d, Height: h, Width: w, Channels: c, ModelSHA256: m.Info.WeightsSHA256,
		Base: cfg.Base, Hidden: cfg.Hidden, Recon: cfg.Recon, be: m.Backend()}
	ctx := m.Context().Checked(false)
	if err := ctx.SetRNGStateFromSeed(cfg.Seed); err != nil {
		return nil, nil, err
	}
	e.ctx = ctx
	var real dataset.Dataset
	if cfg.Recon > 0 {
		var err error
		if real, err = m.Info.OpenData(dataset.Options{N: m.Info.Config.DataN, Seed: m.Info.Config.DataSeed}); err != nil {
			return nil, nil, fmt.Errorf("encoder: the model's data: %w", err)
		}
	}
	var step *context.Exec
	err := engine.Safe("encoder: build", func() error {
		var err error
		step, err = context.NewExec(m.Backend(), ctx, func(ctx *context.Context, in []*graph.Node) []*graph.Node {
			z := in[0]
			x := graph.StopGradient(m.Build(ctx, z))
			lat := graph.ReduceAllMean(graph.Square(graph.Sub(e.build(ctx, x), z)))
			loss, rec := lat, graph.ScalarZero(z.Graph(), z.DType())
			if cfg.Recon > 0 {
				xr := in[1]
				rec = graph.ReduceAllMean(graph.Square(graph.Sub(m.Build(ctx, e.build(ctx, xr)), xr)))
				loss = graph.Add(loss, graph.MulScalar(rec, cfg.Recon))
			}
			engine.Adam{Name: optimName, LR: cfg.LR, Scale: train.LRScale(ctx, z.Graph())}.Minimize(ctx, loss, engine.Variables(ctx, encScope))
			return []*graph.Node{loss, lat, rec}
		})
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	keys := []string{"loss", "latent_mse", "recon_mse"}
	loop := &train.Loop{
		Name: "encoder " + m.Space(), Dir: opt.Dir, Ctx: ctx, Scopes: []string{encScope, "/optim/" + optimName},
		Keys: keys, Steps: cfg.Steps, CheckpointEvery: cfg.CheckpointEvery, Resume: opt.Resume, Log: opt.Log, JSON: opt.JSON,
		Step: func(s int) ([]float64, error) {
			// The batch of step s is a function of (seed, s): a resumed run
			// draws the same.
			r := rand.New(rand.NewPCG(uint64(cfg.Seed), 0xe4c<<32|uint64(s)))
			z, err := drawLatents(m, r, cfg.Batch)
			if err != nil {
				return nil, err
			}
			in := []any{tensors.FromFlatDataAndDimensions(z, cfg.Batch, d)}
			if real != nil {
				idx := make([]int, cfg.Batch)
				for i := range idx {
					idx[i] = r.IntN(real.Len())
				}
				pix, _, err := dataset.Batch(real, idx)
				if err != nil {
					return nil, err
				}
				in = append(in, tensors.FromFlatDataAndDimensions(pix, cfg.Batch, h, w, c))
			}
			var vals []float64
			err = engine.Safe("encoder: step", func() error {
				out, err := step.Exec(in...)
				if err != nil {
					return err
				}
				for _, o := range out {
					vals = append(vals, float64(tensors.ToScalar[float32](o)))
				}
				return nil
			})
			return vals, err
		},
		Save: func(s int) error {
			e.Steps = s
			return e.save(opt.Dir, ctx)
		},
		Plot: &train.Plot{Title: "encoder (" + m.Space() + ")", Keys: keys},
	}
	res, err := loop.Run()
	if err != nil {
		return nil, nil, err
	}
	e.Steps = res.Step
	score, err := e.Score(m, cfg.HeldOut, cfg.Seed)
	if err != nil {
		return nil, nil, err
	}
	e.HeldOut = score
	return e, res, e.save(opt.Dir, ctx)
}

// drawLatents draws n latents of m's space from r: root latents through
// the model's prior, lifted into the view's codes in W or W+.
func drawLatents(m *generator.Model, r *rand.Rand, n int) ([]float32, error) {
	root := m.Root()
	rd := root.LatentDim()
	zs := make([][]float32, n)
	for i := range zs {
		zs[i] = make([]float32, rd)
		root.DrawLatent(r, zs[i])
	}
	cs, err := m.Lift(zs)
	if err != nil {
		return nil, err
	}
	out := make([]float32, 0, n*m.LatentDim())
	for _, c := range cs {
		out = append(out, c...)
	}
	return out, nil
}

// Score measures the encoder on n latents of a stream training never
// draws: the latent error and the PSNR of G(E(G(z))) against G(z).
func (e *Encoder) Score(m *generator.Model, n int, seed int64) (*Score, error) {
	r := rand.New(rand.NewPCG(uint64(seed), 0x5c0e<<32))
	z, err := drawLatents(m, r, n)
	if err != nil {
		return nil, err
	}
	x, err := m.GenerateFloats(z, n)
	if err != nil {
		return nil, err
	}
	zh, err := e.Encode(x, n)
	if err != nil {
		return nil, err
	}
	xh, err := m.GenerateFloats(zh, n)
	if err != nil {
		return nil, err
	}
	sz := len(x) / n
	s := &Score{N: n, LatentMSE: MSE(z, zh)}
	for i := 0; i < n; i++ {
		s.PSNR += PSNR(MSE(x[i*sz:(i+1)*sz], xh[i*sz:(i+1)*sz])) / float64(n)
	}
	return s, nil
}
