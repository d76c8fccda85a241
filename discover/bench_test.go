package discover

// Benchmarks of the reconstructor step and of the direction-discovery step
// at batch 64, the Go halves of the pairs whose PyTorch twins are
// bench/torch/discover.py (see bench/README.md; bench/run.sh runs both sides).
// They are benchmarks, not tests: nothing here asserts speed. Run each in its
// own process so that its peak-RSS metric is its own:
//
//	GOMAXPROCS=2 go test ./discover -run XXX -bench ReconstructorStep -benchtime 5x
//	GOMAXPROCS=2 go test ./discover -run XXX -bench DiscoveryStep -benchtime 5x

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/edit"
	"latentedit/engine"
)

const benchBatch = 64

// benchDiscoverConfig is the default discovery run (linear directions, K 8,
// reconstructor width 32) at batch 64.
func benchDiscoverConfig() Config {
	c := Default("linear")
	c.Batch = benchBatch
	return c
}

// timeSteps runs step b.N times and reports ms/step (mean, median, min),
// the trainable parameters and the process's peak RSS.
func timeSteps(b *testing.B, step func(i int) error, params map[string]int) {
	if b.N == 1 {
		b.Logf("params %v", params)
	}
	ms := make([]float64, b.N)
	mm0, cv0 := engine.MatMulTime(), engine.ConvTime()
	engine.OpProfile(0, 1) // drop what the earlier calls counted
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := step(i); err != nil {
			b.Fatal(err)
		}
		ms[i] = float64(time.Since(t0).Microseconds()) / 1e3
	}
	b.StopTimer()
	if p := engine.OpProfile(40, b.N); p != "" && b.N > 1 {
		fmt.Fprint(os.Stderr, p) // LATENTEDIT_OP_PROFILE=1
	}
	sort.Float64s(ms)
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/step")
	b.ReportMetric((ms[(b.N-1)/2]+ms[b.N/2])/2, "median-ms/step")
	b.ReportMetric(ms[0], "min-ms/step")
	b.ReportMetric(float64((engine.MatMulTime()-mm0).Microseconds())/1e3/float64(b.N), "sgemm-ms/step")
	b.ReportMetric(float64((engine.ConvTime()-cv0).Microseconds())/1e3/float64(b.N), "conv-ms/step")
	for k, v := range params {
		b.ReportMetric(float64(v), k+"-params")
	}
	if rss, err := engine.PeakRSS(); err == nil {
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MB")
	}
}

// countParams counts the scalars of the variables under scope, trainable or
// not (the loaded generator's are frozen); optimiser state lives under /optim.
func countParams(ctx *context.Context, scope string) int {
	n := 0
	for v := range ctx.IterVariables() {
		if engine.InScope(v.Scope(), scope) {
			n += v.Shape().Size()
		}
	}
	return n
}

var benchDisc = map[string]*struct {
	once sync.Once
	t    *Trainer
	err  error
}{"linear": {}, "warped": {}, "curvilinear": {}}

// BenchmarkDiscoveryStep times Trainer.Step of the default discovery run on
// the shipped faces GAN (32×32 RGB, latent 64, base 64): G(z) and G(z+εd_k)
// through the frozen generator, the reconstructor on the pair, CE + λ·L1,
// Adam on the directions and the reconstructor, the 5 scalars to the host.
func BenchmarkDiscoveryStep(b *testing.B) { benchDiscovery(b, "linear") }

// BenchmarkDiscoveryStepWarped and BenchmarkDiscoveryStepCurvilinear are the
// same step with the other two trainable editors (their PyTorch twins are not
// written: the editors' own graphs act on [64, 64] latents and are small next
// to the two passes through G and R; these say how much they add on our side).
func BenchmarkDiscoveryStepWarped(b *testing.B) { benchDiscovery(b, "warped") }

func BenchmarkDiscoveryStepCurvilinear(b *testing.B) { benchDiscovery(b, "curvilinear") }

func benchDiscovery(b *testing.B, method string) {
	bd := benchDisc[method]
	bd.once.Do(func() {
		m := loadDefault(b, "faces-gan")
		cfg := Default(method)
		cfg.Batch = benchBatch
		bd.t, bd.err = New(m, cfg)
		if bd.err == nil { // compiles the graph: untimed
			_, bd.err = bd.t.Step(0)
		}
	})
	if bd.err != nil {
		b.Fatal(bd.err)
	}
	t := bd.t
	params := map[string]int{"G": countParams(t.ctx, "/generator"), "editor": countParams(t.ctx, edit.Scope), "R": countParams(t.ctx, reconScope)}
	timeSteps(b, func(i int) error { _, err := t.Step(i + 1); return err }, params)
}

var benchRecon struct {
	once   sync.Once
	ctx    *context.Context
	exec   *context.Exec
	inputs []any
	err    error
}

// BenchmarkReconstructorStep times a training step of the reconstructor
// alone (default width 32, K 8) on a batch of 64 random image pairs of
// 32×32 RGB: R's forward, CE + λ·L1, Adam on R, the loss to the host.
func BenchmarkReconstructorStep(b *testing.B) {
	cfg := benchDiscoverConfig()
	benchRecon.once.Do(func() {
		benchRecon.err = engine.Safe("reconstructor bench", func() error {
			be, err := engine.NewBackend("")
			if err != nil {
				return err
			}
			ctx := context.New().Checked(false)
			if err := ctx.SetRNGStateFromSeed(1); err != nil {
				return err
			}
			exec, err := context.NewExec(be, ctx, func(ctx *context.Context, x0, x1, onehot, eps *graph.Node) *graph.Node {
				logits, epsPred := Reconstruct(ctx.InAbsPath(reconScope), x0, x1, cfg.K, cfg.Width)
				ce := graph.Neg(graph.ReduceAllMean(graph.ReduceSum(graph.Mul(onehot, graph.LogSoftmax(logits, -1)), -1)))
				l1 := graph.ReduceAllMean(graph.Abs(graph.Sub(epsPred, eps)))
				loss := graph.Add(ce, graph.MulScalar(l1, cfg.Lambda))
				engine.Adam{Name: optimName, LR: cfg.LR}.Minimize(ctx, loss, engine.Variables(ctx, reconScope))
				return loss
			})
			if err != nil {
				return err
			}
			r := rand.New(rand.NewPCG(1, 2))
			img := func() *tensors.Tensor {
				v := make([]float32, benchBatch*32*32*3)
				for i := range v {
					v[i] = 2*r.Float32() - 1
				}
				return tensors.FromFlatDataAndDimensions(v, benchBatch, 32, 32, 3)
			}
			oh := make([]float32, benchBatch*cfg.K)
			eps := make([]float32, benchBatch)
			for i := 0; i < benchBatch; i++ {
				oh[i*cfg.K+r.IntN(cfg.K)] = 1
				eps[i] = 6*r.Float32() - 3
			}
			benchRecon.ctx, benchRecon.exec = ctx, exec
			benchRecon.inputs = []any{img(), img(), tensors.FromFlatDataAndDimensions(oh, benchBatch, cfg.K), tensors.FromFlatDataAndDimensions(eps, benchBatch)}
			return reconStep()
		})
	})
	if benchRecon.err != nil {
		b.Fatal(benchRecon.err)
	}
	timeSteps(b, func(int) error { return reconStep() }, map[string]int{"R": countParams(benchRecon.ctx, reconScope)})
}

func reconStep() error {
	return engine.Safe("reconstructor step", func() error {
		out, err := benchRecon.exec.Exec(benchRecon.inputs...)
		if err != nil {
			return err
		}
		if l := tensors.ToScalar[float32](out[0]); l != l {
			return fmt.Errorf("loss is NaN")
		}
		out[0].FinalizeAll()
		return nil
	})
}
