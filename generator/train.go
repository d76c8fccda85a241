package generator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/dataset"
	"latentedit/engine"
	"latentedit/internal/figure"
	"latentedit/internal/progress"
	"latentedit/train"
)

// Options are the run-time settings of Train that are not part of the model.
type Options struct {
	Out     string           // model directory
	Resume  bool             // continue from Out's train state
	Backend backends.Backend // where to compute
	Log     io.Writer        // progress output (nil: discard)
	JSON    bool             // progress as JSON lines
	Command string           // the command line, recorded in model.json
	Workers int              // goroutines rendering the data (0: all cores)
}

// Result summarises a finished run.
type Result struct {
	Step   int
	Losses map[string]float64 // the last step's
}

// ErrNonFinite is wrapped by the error of a run stopped by a NaN or Inf.
var ErrNonFinite = train.ErrNonFinite

// trainer holds one run's state.
type trainer struct {
	cfg       Config
	opt       Options
	arch      Arch
	ctx       *context.Context
	data      []float32 // all training images, [DataN, S, S, C]
	n         int
	perm      []int // data order of epoch permEpoch
	permEpoch int
	step      *context.Exec
	r1Step    *context.Exec // style: the lazy R1 step of D
	lastR1    float64       // style: the last R1 penalty measured
	sample    *context.Exec
	lossKey   []string
}

// Train runs cfg into the model directory opt.Out: sample grids and loss
// curves every SampleEvery steps, an atomic checkpoint every CheckpointEvery
// steps and at the end. With opt.Resume it continues from the last checkpoint
// and reaches the same weights as an uninterrupted run: data order, latents
// and noise are functions of (seed, step), never of the process's history.
func Train(cfg Config, opt Options) (res *Result, err error) {
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	if opt.Out == "" {
		return nil, errors.New("train: no output directory")
	}
	if cfg.ImportOnly() {
		return nil, fmt.Errorf("train: arch %s is import-only (latentedit import)", cfg.ArchName())
	}
	if opt.Resume {
		// The run's own settings win, except how long to go on. They are
		// read from the state, not model.json: a kill can fall between the two.
		state := filepath.Join(opt.Out, TrainStateFile)
		_, meta, err := train.ReadState(state)
		if err != nil {
			return nil, fmt.Errorf("train --resume: %w", err)
		}
		var stored Config
		if err := json.Unmarshal([]byte(meta["config"]), &stored); err != nil {
			return nil, fmt.Errorf("train --resume: %s: config: %w", state, err)
		}
		stored.Steps = max(stored.Steps, cfg.Steps)
		cfg = stored
	}
	ds, err := dataset.Open(cfg.Dataset, dataset.Options{N: cfg.DataN, Seed: cfg.DataSeed, Size: cfg.Size, Dir: cfg.DataDir, NoCorrelation: cfg.NoCorrelation})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	h, w, c := ds.Shape()
	if h != w {
		return nil, fmt.Errorf("train: dataset %s has %dx%d images; square images only", cfg.Dataset, h, w)
	}
	cfg.Size, cfg.Channels = h, c
	if cfg.DataN <= 0 || cfg.DataN > ds.Len() {
		cfg.DataN = ds.Len()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	arch, _ := cfg.Arch()
	t := &trainer{cfg: cfg, opt: opt, arch: arch, ctx: context.New().Checked(false)}
	if err := os.MkdirAll(filepath.Join(opt.Out, "generator"), 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := t.ctx.SetRNGStateFromSeed(cfg.Seed); err != nil {
		return nil, err
	}
	if err := t.loadData(ds); err != nil {
		return nil, err
	}
	if err := engine.Safe("train", t.build); err != nil {
		return nil, err
	}
	var plotted []string // gradient norms live on another scale: only the losses
	for _, k := range t.lossKey {
		if !strings.HasPrefix(k, "grad") {
			plotted = append(plotted, k)
		}
	}
	cfgJSON, _ := json.Marshal(cfg)
	loop := &train.Loop{
		Name: "train " + cfg.Kind + " " + cfg.Dataset, Dir: opt.Out, State: TrainStateFile, Ctx: t.ctx,
		Meta: map[string]string{"config": string(cfgJSON)},
		Keys: t.lossKey, Steps: cfg.Steps, CheckpointEvery: cfg.CheckpointEvery, Schedule: cfg.Schedule,
		Resume: opt.Resume, Log: opt.Log, JSON: opt.JSON,
		Step: func(s int) (vals []float64, err error) {
			err = engine.Safe("train step", func() error {
				vals, err = t.runStep(s)
				return err
			})
			return vals, err
		},
		Save:  t.checkpoint,
		Every: cfg.SampleEvery, Periodic: func(int) error { return t.writeSamples() },
		Plot: &train.Plot{Title: fmt.Sprintf("%s on %s", cfg.Kind, cfg.Dataset), Keys: plotted},
	}
	run, err := loop.Run()
	if err != nil {
		return nil, err
	}
	return &Result{Step: run.Step, Losses: run.Last}, nil
}

// loadData renders or decodes the whole training set once, in parallel: on a
// GPU a step takes milliseconds and per-step rendering would dominate.
func (t *trainer) loadData(ds dataset.Dataset) error {
	h, w, c := ds.Shape()
	sz := h * w * c
	t.n = t.cfg.DataN
	t.data = make([]float32, t.n*sz)
	workers := t.opt.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	bar := progress.New(t.opt.Log, t.n, "load "+t.cfg.Dataset, t.opt.JSON)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
		ferr error
	)
	for wk := 0; wk < workers; wk++ {
		wg.Add(1)
		go func(wk int) {
			defer wg.Done()
			for i := wk; i < t.n; i += workers {
				img, _, err := ds.Sample(i)
				mu.Lock()
				if err != nil && ferr == nil {
					ferr = fmt.Errorf("train: dataset %s: sample %d: %w", ds.Name(), i, err)
				}
				done++
				if done%512 == 0 {
					bar.Set(done, nil)
				}
				mu.Unlock()
				if err != nil {
					return
				}
				dataset.ToFloats(img, c, t.data[i*sz:(i+1)*sz])
			}
		}(wk)
	}
	wg.Wait()
	if ferr != nil {
		return ferr
	}
	bar.Finish()
	return nil
}

// batchIndices returns the data indices of step s: epoch e = ⌊s·B/N⌋ shuffled
// by a permutation seeded with (seed, e), so any step can be recomputed.
func (t *trainer) batchIndices(s int) []int {
	b := t.cfg.Batch
	idx := make([]int, b)
	for j := 0; j < b; j++ {
		pos := s*b + j
		if e := pos / t.n; e != t.permEpoch || t.perm == nil {
			t.perm = rand.New(rand.NewPCG(uint64(t.cfg.Seed), uint64(e)+1)).Perm(t.n)
			t.permEpoch = e
		}
		idx[j] = t.perm[pos%t.n]
	}
	return idx
}

// noise returns n standard normals for step s and purpose k.
func (t *trainer) noise(s, k, n int) []float32 {
	r := rand.New(rand.NewPCG(uint64(t.cfg.Seed)^0x9e3779b97f4a7c15, uint64(s)<<2|uint64(k)))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func (t *trainer) build() error {
	a, cfg := t.arch, t.cfg
	var err error
	if a.Kind == ArchStyle {
		return t.buildStyle()
	}
	if cfg.Kind == "gan" {
		t.lossKey = []string{"loss_d", "loss_g", "d_real", "d_fake", "grad_d", "grad_g"}
		t.step, err = context.NewExec(t.opt.Backend, t.ctx, func(ctx *context.Context, real, z *graph.Node) []*graph.Node {
			gctx, dctx := ctx.In("generator"), ctx.In("discriminator")
			fake := a.Generate(gctx, z)
			dr := a.Discriminate(dctx, real, cfg.DNorm, true)
			df := a.Discriminate(dctx, graph.StopGradient(fake), cfg.DNorm, true)
			dg := a.Discriminate(dctx, fake, cfg.DNorm, true)
			var lossD, lossG *graph.Node
			if cfg.Loss == "hinge" {
				lossD = graph.Add(graph.ReduceAllMean(relu(graph.OneMinus(dr))), graph.ReduceAllMean(relu(graph.OnePlus(df))))
				lossG = graph.Neg(graph.ReduceAllMean(dg))
			} else {
				lossD = graph.Add(graph.ReduceAllMean(graph.Softplus(graph.Neg(dr))), graph.ReduceAllMean(graph.Softplus(df)))
				lossG = graph.ReduceAllMean(graph.Softplus(graph.Neg(dg)))
			}
			gVars, dVars := engine.Variables(ctx, "/generator"), engine.Variables(ctx, "/discriminator")
			gradD := engine.Adam{Name: "d", LR: cfg.LR, Beta1: 0.5, Beta2: 0.999, Scale: train.LRScale(ctx, z.Graph())}.Minimize(ctx, lossD, dVars)
			gradG := engine.Adam{Name: "g", LR: cfg.LR, Beta1: 0.5, Beta2: 0.999, Scale: train.LRScale(ctx, z.Graph())}.Minimize(ctx, lossG, gVars)
			t.updateEMA(ctx, gVars, z.Graph())
			return []*graph.Node{lossD, lossG, graph.ReduceAllMean(dr), graph.ReduceAllMean(df), gradD, gradG}
		})
	} else {
		t.lossKey = []string{"loss", "recon", "kl", "grad"}
		t.step, err = context.NewExec(t.opt.Backend, t.ctx, func(ctx *context.Context, x, eps *graph.Node) []*graph.Node {
			mu, logVar := a.Encode(ctx.In("encoder"), x, true)
			z := graph.Add(mu, graph.Mul(graph.Exp(graph.MulScalar(logVar, 0.5)), eps))
			recon := a.Generate(ctx.In("generator"), z)
			// Gaussian likelihood with σ = 0.2 on the [-1, 1] scale, summed
			// over pixels; KL summed over latent dimensions; both averaged over the batch.
			rec := graph.DivScalar(graph.ReduceAllSum(graph.Square(graph.Sub(recon, x))), 2*0.2*0.2*float64(cfg.Batch))
			kl := graph.DivScalar(graph.ReduceAllSum(graph.MulScalar(graph.Sub(graph.Add(graph.Exp(logVar), graph.Square(mu)), graph.OnePlus(logVar)), 0.5)), float64(cfg.Batch))
			loss := graph.Add(rec, graph.MulScalar(kl, cfg.Beta))
			vars := append(engine.Variables(ctx, "/generator"), engine.Variables(ctx, "/encoder")...)
			grad := engine.Adam{Name: "vae", LR: cfg.LR, Scale: train.LRScale(ctx, x.Graph())}.Minimize(ctx, loss, vars)
			return []*graph.Node{loss, rec, kl, grad}
		})
	}
	if err != nil {
		return err
	}
	t.sample, err = context.NewExec(t.opt.Backend, t.ctx, func(ctx *context.Context, z *graph.Node) *graph.Node {
		return a.Generate(ctx.InAbsPath(t.samplingScope()), z)
	})
	return err
}

// samplingScope holds the weights images are drawn with: the weight average
// for a GAN (smoother samples than the raw generator), the decoder for a VAE.
func (t *trainer) samplingScope() string {
	if t.cfg.Kind == "gan" {
		return "/generator_ema"
	}
	return "/generator"
}

// updateEMA moves /generator_ema towards the freshly updated generator. The
// average starts at zero; the decay min(ema, (1+n)/(10+n)) of step n makes
// the zero start fade within the first few hundred steps.
func (t *trainer) updateEMA(ctx *context.Context, gVars []*context.Variable, g *graph.Graph) {
	stepVar := ctx.InAbsPath("/train").VariableWithValue("step", float32(0)).SetTrainable(false)
	n := stepVar.ValueGraph(g)
	stepVar.SetValueGraph(graph.OnePlus(n))
	decay := graph.Min(graph.Div(graph.OnePlus(n), graph.AddScalar(n, 10)), graph.Scalar(g, n.DType(), t.cfg.EMA))
	emaOf := func(v *context.Variable) *context.Variable {
		scope := "/generator_ema" + v.Scope()[len("/generator"):]
		return ctx.InAbsPath(scope).VariableWithValue(v.Name(), tensors.FromShape(v.Shape())).SetTrainable(false)
	}
	for _, v := range gVars {
		ema := emaOf(v)
		old := ema.ValueGraph(g)
		ema.SetValueGraph(graph.Add(graph.Mul(old, decay), graph.Mul(v.ValueGraph(g), graph.OneMinus(decay))))
	}
	// Non-trainable generator state (the style GAN's mean w, its fixed
	// noise images) is not averaged: the sampling copy follows it as is.
	for v := range ctx.IterVariables() {
		if !v.Trainable && engine.InScope(v.Scope(), "/generator") {
			emaOf(v).SetValueGraph(v.ValueGraph(g))
		}
	}
}

func (t *trainer) runStep(s int) ([]float64, error) {
	cfg := t.cfg
	sz := cfg.Size * cfg.Size * cfg.Channels
	real := make([]float32, cfg.Batch*sz)
	for j, i := range t.batchIndices(s) {
		copy(real[j*sz:(j+1)*sz], t.data[i*sz:(i+1)*sz])
	}
	x := tensors.FromFlatDataAndDimensions(real, cfg.Batch, cfg.Size, cfg.Size, cfg.Channels)
	z := tensors.FromFlatDataAndDimensions(t.noise(s, 0, cfg.Batch*cfg.Latent), cfg.Batch, cfg.Latent)
	args := []any{x, z}
	if t.arch.Kind == ArchStyle {
		z2 := tensors.FromFlatDataAndDimensions(t.noise(s, 1, cfg.Batch*cfg.Latent), cfg.Batch, cfg.Latent)
		args = append(args, z2, t.mixMask(s))
	}
	out, err := t.step.Exec(args...)
	if err != nil {
		return nil, err
	}
	vals := make([]float64, len(out))
	for i, o := range out {
		vals[i] = float64(tensors.ToScalar[float32](o))
		o.FinalizeAll()
	}
	if t.r1Step != nil {
		if _, every := cfg.r1(); s%every == 0 {
			out, err := t.r1Step.Exec(x)
			if err != nil {
				return nil, err
			}
			t.lastR1 = float64(tensors.ToScalar[float32](out[0]))
			out[0].FinalizeAll()
		}
		vals = append(vals, t.lastR1)
	}
	return vals, nil
}

// mixMask is step s's style-mixing mask [B, Styles]: for a fraction Mixing
// of the images, the blocks from a random crossover on take the second
// latent's style (1), the others the first's (0). Mixing keeps each block's
// style meaningful on its own, which is what makes W+ editable per block.
func (t *trainer) mixMask(s int) *tensors.Tensor {
	l := t.arch.Styles()
	r := rand.New(rand.NewPCG(uint64(t.cfg.Seed)^0x51ab, uint64(s)))
	m := make([]float32, t.cfg.Batch*l)
	for i := 0; i < t.cfg.Batch; i++ {
		if r.Float64() >= t.cfg.Mixing {
			continue
		}
		for j := 1 + r.IntN(l-1); j < l; j++ {
			m[i*l+j] = 1
		}
	}
	return tensors.FromFlatDataAndDimensions(m, t.cfg.Batch, l)
}

// buildStyle builds the style GAN's steps: G and D with the non-saturating
// loss and style mixing, and D's lazy R1 step (R1: γ/2·E‖∇ₓD(x)‖² on real
// images, run every R1Every steps with its weight multiplied by R1Every, as
// StyleGAN2 does). Adam's β₁ = 0 (StyleGAN2's betas are 0 and 0.99).
func (t *trainer) buildStyle() error {
	a, cfg := t.arch, t.cfg
	gamma, every := cfg.r1()
	adam := func(name string, g *graph.Graph, ctx *context.Context) engine.Adam {
		// β₁ = 1e-8 stands for 0: a zero field selects Adam's default 0.9.
		return engine.Adam{Name: name, LR: cfg.LR, Beta1: 1e-8, Beta2: 0.99, Scale: train.LRScale(ctx, g)}
	}
	t.lossKey = []string{"loss_d", "loss_g", "d_real", "d_fake", "grad_d", "grad_g", "r1"}
	var err error
	t.step, err = context.NewExec(t.opt.Backend, t.ctx, func(ctx *context.Context, real, z, z2, mix *graph.Node) []*graph.Node {
		gctx, dctx := ctx.In("generator"), ctx.In("discriminator")
		g := z.Graph()
		w1, w2 := a.Mapping(gctx, z), a.Mapping(gctx, z2)
		trackWAvg(gctx, w1)
		m := graph.ExpandAxes(mix, -1) // [B, Styles, 1]
		ws := graph.Add(graph.Mul(a.broadcastStyles(w1), graph.OneMinus(m)), graph.Mul(a.broadcastStyles(w2), m))
		fake := a.Synthesis(gctx, ws, true)
		dr := a.Discriminate(dctx, real, "", true)
		df := a.Discriminate(dctx, graph.StopGradient(fake), "", true)
		dg := a.Discriminate(dctx, fake, "", true)
		lossD := graph.Add(graph.ReduceAllMean(graph.Softplus(graph.Neg(dr))), graph.ReduceAllMean(graph.Softplus(df)))
		lossG := graph.ReduceAllMean(graph.Softplus(graph.Neg(dg)))
		gVars, dVars := engine.Variables(ctx, "/generator"), engine.Variables(ctx, "/discriminator")
		gradD := adam("d", g, ctx).Minimize(ctx, lossD, dVars)
		gradG := adam("g", g, ctx).Minimize(ctx, lossG, gVars)
		t.updateEMA(ctx, gVars, g)
		return []*graph.Node{lossD, lossG, graph.ReduceAllMean(dr), graph.ReduceAllMean(df), gradD, gradG}
	})
	if err != nil {
		return err
	}
	t.r1Step, err = context.NewExec(t.opt.Backend, t.ctx, func(ctx *context.Context, real *graph.Node) *graph.Node {
		dr := a.Discriminate(ctx.In("discriminator"), real, "", true)
		grad := graph.Gradient(graph.ReduceAllSum(dr), real)[0]
		pen := graph.ReduceAllMean(graph.ReduceSum(graph.Square(grad), 1, 2, 3))
		adam("d", real.Graph(), ctx).Minimize(ctx, graph.MulScalar(pen, gamma/2*float64(every)), engine.Variables(ctx, "/discriminator"))
		return pen
	})
	if err != nil {
		return err
	}
	t.sample, err = context.NewExec(t.opt.Backend, t.ctx, func(ctx *context.Context, z *graph.Node) *graph.Node {
		return a.Generate(ctx.InAbsPath(t.samplingScope()), z)
	})
	return err
}

// sampleLatents are the fixed latents of the sample grids, so grids of
// successive checkpoints show the same 64 characters growing up.
func (t *trainer) sampleLatents() []float32 {
	var flat []float32
	for _, z := range Latents(1000, 64, t.cfg.Latent) {
		flat = append(flat, z...)
	}
	return flat
}

func (t *trainer) writeSamples() error {
	out, err := t.sample.Exec(tensors.FromFlatDataAndDimensions(t.sampleLatents(), 64, t.cfg.Latent))
	if err != nil {
		return fmt.Errorf("train: samples: %w", err)
	}
	pix := tensors.MustCopyFlatData[float32](out[0])
	imgs := ToImages(pix, 64, t.cfg.Size, t.cfg.Size, t.cfg.Channels)
	if err := figure.Grid(filepath.Join(t.opt.Out, SamplesPNG), imgs, 8, 512); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// checkpoint writes, after the loop has written the full train state, the
// sampling weights (and a GAN's discriminator) and then model.json: model.json (with the weights'
// checksum) is written last, so a reader never sees a model.json pointing at
// weights that are not there.
func (t *trainer) checkpoint(step int) error {
	meta := map[string]string{"step": strconv.Itoa(step)}
	vals := map[string]*tensors.Tensor{}
	from := t.samplingScope()
	for v := range t.ctx.IterVariables() {
		sc := v.Scope()
		switch {
		case engine.InScope(sc, from):
			vals["/generator"+sc[len(from):]+"/"+v.Name()] = v.MustValue()
		case t.cfg.Kind == "vae" && engine.InScope(sc, "/encoder"):
			vals[v.ScopeAndName()] = v.MustValue()
		}
	}
	info := Info{
		Kind: t.cfg.Kind, LatentDim: t.cfg.Latent,
		Height: t.cfg.Size, Width: t.cfg.Size, Channels: t.cfg.Channels, Dataset: t.cfg.Dataset,
		Config: t.cfg, Step: step, Command: t.opt.Command,
	}
	if t.cfg.Kind == "gan" {
		// Before model.json, which records its checksum.
		sum, err := writeDiscriminator(t.opt.Out, discriminatorVars(t.ctx))
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		info.DiscriminatorSHA256 = sum
	}
	if err := WriteModel(t.opt.Out, info, vals, meta); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

func relu(x *graph.Node) *graph.Node { return graph.Max(x, graph.ZerosLike(x)) }
