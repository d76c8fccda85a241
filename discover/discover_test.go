package discover

import (
	"os"
	"testing"

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

func TestMain(m *testing.M) {
	killtest.Main(m, func(_, dir string) error {
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
		_, err = Run(m, killConfig(), Options{Out: dir})
		return err
	})
}
