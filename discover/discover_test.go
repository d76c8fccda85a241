package discover

import (
	"os"
	"testing"

	"latentedit/edit"
	"latentedit/engine"
	"latentedit/generator"
	"latentedit/models"
	"latentedit/train/killtest"
)

// loadDefault loads an embedded default model into a fresh context.
func loadDefault(t testing.TB, name string) *generator.Model {
	t.Helper()
	be, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := models.Extract(name, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := generator.Load(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// shortConfig trains in seconds: few directions, small batch, a fast
// learning rate and large moves so the reconstructor can tell them apart.
func shortConfig(method string, steps int) Config {
	c := Default(method)
	c.K, c.Batch, c.Steps, c.LR, c.Width, c.CheckpointEvery = 4, 16, steps, 1e-3, 16, steps
	return c
}

func TestDiscoverRCARises(t *testing.T) {
	for _, method := range []string{"linear", "warped", "curvilinear"} {
		t.Run(method, func(t *testing.T) {
			m := loadDefault(t, "mnist-gan")
			cfg := shortConfig(method, 80)
			res, err := Run(m, cfg, Options{Out: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			chance := 1 / float64(cfg.K)
			t.Logf("%s: RCA %.3f after %d steps (chance %.2f), last %v", method, res.RCA, cfg.Steps, chance, res.Last)
			if res.RCA < 2*chance {
				t.Fatalf("RCA %.3f not well above chance %.2f", res.RCA, chance)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		func() Config { c := Default("ganspace"); return c }(),
		func() Config { c := Default("linear"); c.K = 1; return c }(),
		func() Config { c := Default("linear"); c.Batch = 1; return c }(),
		func() Config { c := Default("linear"); c.EpsMin, c.EpsMax = 3, 1; return c }(),
	}
	for i, c := range bad {
		if c.Validate() == nil {
			t.Errorf("config %d (%+v) accepted", i, c)
		}
	}
	if err := Default("curvilinear").Validate(); err != nil {
		t.Fatal(err)
	}
}

// killConfig is the run TestKillAndResume kills: the curvilinear editor,
// whose state (flow, reconstructor, Adam) is the largest of the three.
func killConfig() Config {
	c := shortConfig("curvilinear", 12)
	c.Batch, c.CheckpointEvery = 8, 3
	return c
}

// TestKillAndResume: SIGKILL after a checkpoint, --resume, and the state
// (editor, reconstructor, optimiser) is the uninterrupted run's, bit for bit.
func TestKillAndResume(t *testing.T) {
	killtest.Run(t, killConfig().Steps, t.TempDir(), t.TempDir(), StateFile, func(dir string, resume bool) error {
		_, err := Run(loadDefault(t, "mnist-gan"), killConfig(), Options{Out: dir, Resume: resume})
		return err
	})
}

// TestPotentialPDEResidualFalls: a short potential-flow discovery on the
// MNIST GAN lowers the wave-equation residual (the penalty) while the
// reconstructor learns to tell the flows apart.
func TestPotentialPDEResidualFalls(t *testing.T) {
	m := loadDefault(t, "mnist-gan")
	cfg := shortConfig("potential", 60)
	tr, err := New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mean := func(from, to int) (pen, acc float64) {
		for s := from; s < to; s++ {
			v, err := tr.Step(s)
			if err != nil {
				t.Fatal(err)
			}
			pen, acc = pen+v[3]/float64(to-from), acc+v[4]/float64(to-from)
		}
		return
	}
	pen0, acc0 := mean(0, 10)
	mean(10, cfg.Steps-10)
	pen1, acc1 := mean(cfg.Steps-10, cfg.Steps)
	t.Logf("PDE residual %.4g → %.4g, batch accuracy %.2f → %.2f over %d steps", pen0, pen1, acc0, acc1, cfg.Steps)
	if !(pen1 < 0.5*pen0) {
		t.Errorf("PDE residual %.4g → %.4g: did not halve", pen0, pen1)
	}
	if !(acc1 > 1.2/float64(cfg.K)) {
		t.Errorf("batch accuracy %.2f after %d steps, chance %.2f", acc1, cfg.Steps, 1/float64(cfg.K))
	}
}

// killConfigs are the runs of the kill tests, by test name.
var killConfigs = map[string]func() Config{
	"TestKillAndResume": killConfig,
	"TestKillAndResumePotential": func() Config {
		c := shortConfig("potential", 12)
		c.Batch, c.CheckpointEvery, c.Options = 8, 3, edit.Options{"hidden": 16}
		return c
	},
}

// TestKillAndResumePotential is TestKillAndResume for the potential flows.
func TestKillAndResumePotential(t *testing.T) {
	cfg := killConfigs[t.Name()]()
	killtest.Run(t, cfg.Steps, t.TempDir(), t.TempDir(), StateFile, func(dir string, resume bool) error {
		_, err := Run(loadDefault(t, "mnist-gan"), cfg, Options{Out: dir, Resume: resume})
		return err
	})
}

func TestMain(m *testing.M) {
	killtest.Main(m, func(name, dir string) error {
		be, err := engine.NewBackend("")
		if err != nil {
			return err
		}
		src, err := os.MkdirTemp("", "killtest-model")
		if err != nil {
			return err
		}
		defer os.RemoveAll(src)
		mdir, err := models.Extract("mnist-gan", src)
		if err != nil {
			return err
		}
		m, err := generator.Load(mdir, be)
		if err != nil {
			return err
		}
		_, err = Run(m, killConfigs[name](), Options{Out: dir})
		return err
	})
}
