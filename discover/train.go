package discover

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/edit"
	"latentedit/engine"
	"latentedit/generator"
	"latentedit/internal/atomicfile"
	"latentedit/train"
)

// Files a discovery run adds to the editor directory, beside edit's.
const (
	StateFile  = train.StateFile // editor + reconstructor + optimiser, for --resume
	ConfigFile = "discover.json"
	CurvesCSV  = train.CurvesCSV
	CurvesPNG  = train.CurvesPNG
)

// Scopes of the trainer's own variables in the model's context.
const (
	reconScope = "/reconstructor"
	optimName  = "discover"
)

// Options are run-time settings.
type Options struct {
	Out    string    // editor directory (model/editors/<name>)
	Resume bool      // continue from Out's train state
	Log    io.Writer // progress (nil: discard)
	JSON   bool
}

// Result of a run.
type Result struct {
	Editor edit.Editor
	Step   int
	Last   map[string]float64
	RCA    float64 // reconstructor accuracy on fresh samples after training
}

// ErrNonFinite is wrapped by the error of a run stopped by NaN or Inf.
var ErrNonFinite = train.ErrNonFinite

// Trainer trains one editor on one frozen generator.
type Trainer struct {
	cfg   Config
	m     *generator.Model
	e     edit.Trainable
	ctx   *context.Context
	be    backends.Backend
	step  *context.Exec
	eval  *context.Exec
	keys  []string
	epsLo float64
	epsHi float64
}

// New prepares a trainer: the editor's and reconstructor's variables are
// added to the model's context (the generator's stay frozen there).
func New(m *generator.Model, cfg Config) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The editor learns through G(z + shift): no gradient, no training.
	if err := m.Differentiable(); err != nil {
		return nil, fmt.Errorf("discover %s: %w", cfg.Method, err)
	}
	ctx := m.Context().Checked(false)
	// Fresh variables are initialised from the context's random stream: seed
	// it so that a run is a function of its config.
	if err := ctx.SetRNGStateFromSeed(cfg.Seed); err != nil {
		return nil, err
	}
	ed, err := edit.New(cfg.Method, cfg.K, m.LatentDim(), cfg.Options, ctx, m.Backend())
	if err != nil {
		return nil, err
	}
	if err := edit.SetSpace(ed, m.Space()); err != nil {
		return nil, err
	}
	te, ok := ed.(edit.Trainable)
	if !ok {
		return nil, fmt.Errorf("discover: %s is not trainable", cfg.Method)
	}
	t := &Trainer{cfg: cfg, m: m, e: te, ctx: ctx, be: m.Backend()}
	t.epsLo, t.epsHi = te.EpsRange()
	if cfg.EpsMax > 0 {
		t.epsLo, t.epsHi = cfg.EpsMin, cfg.EpsMax
	}
	t.keys = []string{"loss", "ce", "l1", "penalty", "acc"}
	if err := engine.Safe("discover: build", t.build); err != nil {
		return nil, err
	}
	return t, nil
}

// Editor is the editor being trained.
func (t *Trainer) Editor() edit.Editor { return t.e }

// forward builds the shared part of the training and evaluation graphs.
func (t *Trainer) forward(ctx *context.Context, z, onehot, eps *graph.Node) (loss, ce, l1, penalty, acc *graph.Node) {
	shifted, pen := t.e.Shift(ctx, z, onehot, eps)
	x0 := t.m.Build(ctx, z)
	x1 := t.m.Build(ctx, shifted)
	logits, epsPred := Reconstruct(ctx.InAbsPath(reconScope), x0, x1, t.cfg.K, t.cfg.Width)
	ce = graph.Neg(graph.ReduceAllMean(graph.ReduceSum(graph.Mul(onehot, graph.LogSoftmax(logits, -1)), -1)))
	l1 = graph.ReduceAllMean(graph.Abs(graph.Sub(epsPred, eps)))
	loss = graph.Add(ce, graph.MulScalar(l1, t.cfg.Lambda))
	penalty = graph.ScalarZero(z.Graph(), z.DType())
	if pen != nil {
		penalty = pen
		loss = graph.Add(loss, graph.MulScalar(pen, t.cfg.LogDet))
	}
	picked := graph.ReduceSum(graph.Mul(logits, onehot), -1)
	best := graph.ReduceMax(logits, -1)
	acc = graph.ReduceAllMean(graph.ConvertDType(graph.GreaterOrEqual(picked, best), z.DType()))
	return
}

func (t *Trainer) build() error {
	var err error
	t.step, err = context.NewExec(t.be, t.ctx, func(ctx *context.Context, z, onehot, eps *graph.Node) []*graph.Node {
		loss, ce, l1, pen, acc := t.forward(ctx, z, onehot, eps)
		vars := append(engine.Variables(ctx, edit.Scope), engine.Variables(ctx, reconScope)...)
		engine.Adam{Name: optimName, LR: t.cfg.LR, Scale: train.LRScale(ctx, z.Graph())}.Minimize(ctx, loss, vars)
		return []*graph.Node{loss, ce, l1, pen, acc}
	})
	if err != nil {
		return err
	}
	t.eval, err = context.NewExec(t.be, t.ctx, func(ctx *context.Context, z, onehot, eps *graph.Node) *graph.Node {
		_, _, _, _, acc := t.forward(ctx, z, onehot, eps)
		return acc
	})
	return err
}

// sample draws the batch of step s (or of evaluation batch s with salt 1):
// z from the model's prior (N(0, I) but for a VAE with a fitted prior), k
// uniform, ε = ±U[lo, hi], all functions of (seed, s, salt).
func (t *Trainer) sample(s int, salt uint64) (z, onehot, eps *tensors.Tensor) {
	r := rand.New(rand.NewPCG(uint64(t.cfg.Seed)^salt<<32, uint64(s)))
	b, d, k := t.cfg.Batch, t.m.LatentDim(), t.cfg.K
	zs := make([]float32, b*d)
	for i := 0; i < b; i++ {
		t.m.DrawLatent(r, zs[i*d:(i+1)*d])
	}
	oh := make([]float32, b*k)
	es := make([]float32, b)
	for i := 0; i < b; i++ {
		oh[i*k+r.IntN(k)] = 1
		e := t.epsLo + (t.epsHi-t.epsLo)*r.Float64()
		if r.IntN(2) == 0 {
			e = -e
		}
		es[i] = float32(e)
	}
	return tensors.FromFlatDataAndDimensions(zs, b, d), tensors.FromFlatDataAndDimensions(oh, b, k), tensors.FromFlatDataAndDimensions(es, b)
}

// Step runs training step s and returns loss, ce, l1, penalty, acc.
func (t *Trainer) Step(s int) ([]float64, error) {
	var vals []float64
	err := engine.Safe("discover: step", func() error {
		out, err := t.step.Exec(t.sample(s, 0))
		if err != nil {
			return err
		}
		for _, o := range out {
			vals = append(vals, float64(tensors.ToScalar[float32](o)))
			o.FinalizeAll()
		}
		return nil
	})
	return vals, err
}

// RCA is the reconstructor's accuracy at telling which direction moved, on
// n fresh samples never used in training (a separate random stream).
func (t *Trainer) RCA(n int) (float64, error) {
	batches := max(1, n/t.cfg.Batch)
	sum := 0.0
	err := engine.Safe("discover: rca", func() error {
		for i := 0; i < batches; i++ {
			out, err := t.eval.Exec(t.sample(i, 1))
			if err != nil {
				return err
			}
			sum += float64(tensors.ToScalar[float32](out[0]))
		}
		return nil
	})
	return sum / float64(batches), err
}

// Run trains for cfg.Steps steps into opt.Out (resuming if asked), writes
// the editor, curves and a traversal grid, and measures the final RCA.
func Run(m *generator.Model, cfg Config, opt Options) (*Result, error) {
	if opt.Resume {
		raw, err := os.ReadFile(filepath.Join(opt.Out, ConfigFile))
		if err != nil {
			return nil, fmt.Errorf("discover --resume: %w", err)
		}
		steps := cfg.Steps
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, fmt.Errorf("discover --resume: %s: %w", ConfigFile, err)
		}
		cfg.Steps = max(cfg.Steps, steps)
		if was := cmp.Or(cfg.Space, generator.SpaceZ); was != m.Space() {
			return nil, fmt.Errorf("discover --resume: %s: the run trains in %s, the model was given in %s (--space %s)", filepath.Join(opt.Out, ConfigFile), was, m.Space(), was)
		}
	}
	cfg.Space = ""
	if m.Space() != generator.SpaceZ {
		cfg.Space = m.Space()
	}
	t, err := New(m, cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	raw, _ := json.MarshalIndent(cfg, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(opt.Out, ConfigFile), append(raw, '\n'), atomicfile.DefaultPerm); err != nil {
		return nil, err
	}
	var accRun float64
	loop := &train.Loop{
		Name: "discover " + cfg.Method, Dir: opt.Out, State: StateFile, Ctx: t.ctx,
		Scopes: []string{edit.Scope, reconScope, "/optim/" + optimName},
		Keys:   t.keys, Steps: cfg.Steps, CheckpointEvery: cfg.CheckpointEvery, Schedule: cfg.Schedule,
		Resume: opt.Resume, Log: opt.Log, JSON: opt.JSON,
		Step: t.Step,
		Show: func(s int, vals []float64) map[string]float64 {
			accRun = 0.95*accRun + 0.05*vals[4]
			if s == 0 || accRun == 0 {
				accRun = vals[4]
			}
			return map[string]float64{"loss": vals[0], "rca_running": accRun}
		},
		Save: func(step int) error { return edit.Save(opt.Out, t.e, map[string]any{"steps": step}) },
		Plot: &train.Plot{Title: "discover " + cfg.Method, Keys: []string{"loss", "ce", "l1", "acc"},
			Names: map[string]string{"l1": "l1 (ε)", "acc": "accuracy"}},
	}
	run, err := loop.Run()
	if err != nil {
		return nil, err
	}
	rca, err := t.RCA(512)
	if err != nil {
		return nil, err
	}
	if err := edit.Save(opt.Out, t.e, map[string]any{"steps": run.Step, "rca": rca, "k": cfg.K}); err != nil {
		return nil, err
	}
	return &Result{Editor: t.e, Step: run.Step, Last: run.Last, RCA: rca}, nil
}
