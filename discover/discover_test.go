package discover

import (
	"testing"

	"latentedit/engine"
	"latentedit/generator"
	"latentedit/models"
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
