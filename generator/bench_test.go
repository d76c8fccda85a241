package generator

// Benchmarks of the generators' training steps, the Go halves of the pairs
// whose PyTorch twins are in bench/torch (gan.py, vae.py, stylegan.py; see
// bench/README.md and bench/run.sh). They are benchmarks, not tests: nothing
// here asserts speed.
//
//	GOMAXPROCS=2 go test ./generator -run XXX -bench GANStep32 -benchtime 5x
//	GOMAXPROCS=2 go test ./generator -run XXX -bench 'StyleGANStep64|StyleR1Step64' -benchtime 5x

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
)

// benchConfig is the default configuration of kind ("gan" or "vae") on 32×32
// RGB: latent 64, base 32, batch 64 (for the GAN: spectral norm in D,
// non-saturating loss). Kind "style" is the style GAN the project trains on
// 64×64 RGB faces: base 32, latent 64, two mapping layers, mixing 0.9, no
// noise inputs, lazy R1 every 16 steps.
func benchConfig(kind string) Config {
	if kind == "style" {
		c := Default("gan", "bench")
		c.Size, c.Channels, c.DataN = 64, 3, 256
		c.ArchKind, c.MapDepth, c.Mixing, c.Noise, c.R1Every = ArchStyle, 2, 0.9, false, 16
		return c
	}
	c := Default(kind, "bench")
	c.Size, c.Channels, c.DataN = 32, 3, 256
	return c
}

// benchTrainers are built once per process and kind: the testing package
// calls a benchmark function more than once (N=1, then N=benchtime), and
// graph construction and compilation are not what is measured.
var benchTrainers = map[string]*struct {
	once sync.Once
	t    *trainer
	r1   *context.Exec // style: the lazy R1 step, detached from t (see benchTrainer)
	step int
	err  error
}{"gan": {}, "vae": {}, "style": {}}

func benchTrainer(b *testing.B, kind string) *trainer {
	bt := benchTrainers[kind]
	bt.once.Do(func() {
		cfg := benchConfig(kind)
		if err := cfg.Validate(); err != nil {
			bt.err = err
			return
		}
		arch, _ := cfg.Arch()
		t := &trainer{cfg: cfg, opt: Options{Backend: be(b)}, arch: arch, ctx: context.New().Checked(false)}
		if err := t.ctx.SetRNGStateFromSeed(cfg.Seed); err != nil {
			bt.err = err
			return
		}
		// Random "images" in [-1, 1]: the step's cost does not depend on them.
		t.n = cfg.DataN
		t.data = make([]float32, t.n*cfg.Size*cfg.Size*cfg.Channels)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range t.data {
			t.data[i] = 2*r.Float32() - 1
		}
		bt.err = engine.Safe("build", t.build)
		if bt.err != nil {
			return
		}
		// The first step compiles the graph and creates the variables: untimed.
		// For the style GAN, step 0 is also an R1 step, so both graphs compile.
		bt.err = engine.Safe("first step", func() error { _, err := t.runStep(0); return err })
		bt.step = 1
		// The style GAN's main step and its lazy R1 step are timed apart
		// (BenchmarkStyleGANStep64, BenchmarkStyleR1Step64): left in place,
		// runStep would add an R1 step to every 16th timed step.
		bt.r1, t.r1Step = t.r1Step, nil
		bt.t = t
	})
	if bt.err != nil {
		b.Fatal(bt.err)
	}
	return bt.t
}

// paramCount returns the number of trainable scalars under prefix and one
// "scope/name shape=size" entry per variable, sorted.
func paramCount(ctx *context.Context, prefix string) (int, []string) {
	n := 0
	var lines []string
	for _, v := range engine.Variables(ctx, prefix) {
		sz := v.Shape().Size()
		n += sz
		lines = append(lines, strings.TrimPrefix(v.ScopeAndName(), prefix+"/")+fmt.Sprint(v.Shape().Dimensions)+"="+strconv.Itoa(sz))
	}
	sort.Strings(lines)
	return n, lines
}

// BenchmarkGANStep32 times one full training step of the default 32×32 GAN,
// exactly the graph Train runs (trainer.build): G forward, D on real, on
// detached fake and on fake, both non-saturating losses, both Adam updates
// (β1 = 0.5), the spectral-norm power iterations and the EMA update, plus
// runStep's host side (batch gather, latent noise, reading the 6 scalars).
func BenchmarkGANStep32(b *testing.B) {
	t := benchTrainer(b, "gan")
	timeStep(b, "gan", t, map[string]string{"G": "/generator", "D": "/discriminator"}, nil)
}

// BenchmarkVAEStep32 times one training step of the default 32×32 VAE
// (trainer.build): the encoder (the GAN's D trunk without spectral norm, a
// dense posterior), the reparameterised z, the decoder (the GAN's G), the
// Gaussian reconstruction and KL terms, Adam on both networks, the 4 scalars
// to the host. Its PyTorch twin is bench/torch/vae.py.
func BenchmarkVAEStep32(b *testing.B) {
	t := benchTrainer(b, "vae")
	timeStep(b, "vae", t, map[string]string{"G": "/generator", "E": "/encoder"}, nil)
}

// BenchmarkStyleGANStep64 times one main training step of the style GAN at
// 64×64 RGB, batch 64 (trainer.buildStyle's step, without the lazy R1): the
// mapping of z and z2, style mixing, the synthesis network (modulated
// convolutions, to-RGB skips), the residual D on real, detached fake and
// fake, both non-saturating losses, both Adam updates (β = (0, 0.99)), the
// running mean of w, the EMA of G, plus runStep's host side (batch gather,
// both latents, the mixing mask, reading the 6 scalars). Its PyTorch twin
// is bench/torch/stylegan.py.
func BenchmarkStyleGANStep64(b *testing.B) {
	t := benchTrainer(b, "style")
	timeStep(b, "style", t, map[string]string{"G": "/generator", "D": "/discriminator"}, nil)
}

// BenchmarkStyleR1Step64 times the style GAN's lazy R1 step alone (t.r1Step,
// run every R1Every = 16 steps in training): D on 64 real images, the
// gradient of ΣD(real) with respect to them, its squared norm, and Adam on
// D through that second-order graph. A training step costs on average
// StyleGANStep64 + StyleR1Step64/16. Its twin is stylegan.py --r1.
func BenchmarkStyleR1Step64(b *testing.B) {
	t := benchTrainer(b, "style")
	r1 := benchTrainers["style"].r1
	timeStep(b, "style", t, map[string]string{"D": "/discriminator"}, func(s int) error {
		out, err := r1.Exec(benchBatch(t, s))
		if err != nil {
			return err
		}
		t.lastR1 = float64(tensors.ToScalar[float32](out[0]))
		out[0].FinalizeAll()
		return nil
	})
}

// benchBatch is the real batch of step s, gathered as runStep does.
func benchBatch(t *trainer, s int) *tensors.Tensor {
	cfg := t.cfg
	sz := cfg.Size * cfg.Size * cfg.Channels
	real := make([]float32, cfg.Batch*sz)
	for j, i := range t.batchIndices(s) {
		copy(real[j*sz:(j+1)*sz], t.data[i*sz:(i+1)*sz])
	}
	return tensors.FromFlatDataAndDimensions(real, cfg.Batch, cfg.Size, cfg.Size, cfg.Channels)
}

// timeStep runs kind's step b.N times (run, or t.runStep when run is nil)
// and reports ms/step (mean, median, min), the time in native matmuls and
// convolutions, each network's trainable parameters and the process's peak
// RSS.
func timeStep(b *testing.B, kind string, t *trainer, nets map[string]string, run func(step int) error) {
	if run == nil {
		run = func(s int) error { _, err := t.runStep(s); return err }
	}
	bt := benchTrainers[kind]
	counts := map[string]int{}
	if b.N == 1 { // log once, not on every call of the benchmark function
		// One line each: without -v the testing package keeps only ten.
		total := 0
		for _, name := range []string{"G", "D", "E"} {
			if scope, ok := nets[name]; ok {
				n, lines := paramCount(t.ctx, scope)
				total += n
				b.Logf("%s: %s", name, strings.Join(lines, ", "))
				counts[name] = n
			}
		}
		b.Logf("params %v total=%d", counts, total)
	}
	ms := make([]float64, b.N)
	mm0, cv0 := engine.MatMulTime(), engine.ConvTime()
	engine.OpProfile(0, 1) // drop what the earlier calls counted
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := run(bt.step); err != nil {
			b.Fatal(err)
		}
		ms[i] = float64(time.Since(t0).Microseconds()) / 1e3
		bt.step++
	}
	b.StopTimer()
	if p := engine.OpProfile(40, b.N); p != "" && b.N > 1 {
		fmt.Fprint(os.Stderr, p) // LATENTEDIT_OP_PROFILE=1
	}
	// Mean, median and minimum: on a shared machine the minimum is the
	// figure least disturbed by other load.
	sort.Float64s(ms)
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/step")
	b.ReportMetric((ms[(b.N-1)/2]+ms[b.N/2])/2, "median-ms/step")
	b.ReportMetric(ms[0], "min-ms/step")
	b.ReportMetric(float64((engine.MatMulTime()-mm0).Microseconds())/1e3/float64(b.N), "sgemm-ms/step")
	b.ReportMetric(float64((engine.ConvTime()-cv0).Microseconds())/1e3/float64(b.N), "conv-ms/step")
	for name, scope := range nets {
		n, _ := paramCount(t.ctx, scope)
		b.ReportMetric(float64(n), name+"-params")
	}
	if rss, err := engine.PeakRSS(); err == nil {
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MB") // of the process: run this benchmark alone
	}
}

// BenchmarkGeneratorForward32 times sampling a batch of 64 images from the
// default 32×32 generator (forward only, no gradient).
func BenchmarkGeneratorForward32(b *testing.B) {
	cfg := benchConfig("gan")
	arch, err := NewArch(cfg.Size, cfg.Channels, cfg.Base, cfg.Latent)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.New().Checked(false)
	if err := ctx.SetRNGStateFromSeed(cfg.Seed); err != nil {
		b.Fatal(err)
	}
	exec, err := context.NewExec(be(b), ctx, func(ctx *context.Context, z *graph.Node) *graph.Node {
		return arch.Generate(ctx.In("generator"), z)
	})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 64
	flat := make([]float32, 0, batch*cfg.Latent)
	for _, v := range Latents(1, batch, cfg.Latent) {
		flat = append(flat, v...)
	}
	zt := tensors.FromFlatDataAndDimensions(flat, batch, cfg.Latent)
	run := func() error {
		return engine.Safe("sample", func() error {
			out, err := exec.Exec(zt)
			if err != nil {
				return err
			}
			for _, o := range out {
				o.FinalizeAll()
			}
			return nil
		})
	}
	if err := run(); err != nil { // compile outside the timer
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := run(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/batch")
}
