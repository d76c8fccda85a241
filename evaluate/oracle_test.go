package evaluate

import (
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"latentedit/dataset"
	_ "latentedit/dataset/faces"
	"latentedit/edit"
	"latentedit/engine"
	"latentedit/generator"
	"latentedit/models"
	"latentedit/train/killtest"
)

// TestOracleLearnsFaces trains a short oracle and checks it reads the big
// factors (R² well above 0) on held-out images, then round-trips it.
func TestOracleLearnsFaces(t *testing.T) {
	be, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	train, _ := dataset.Open("faces", dataset.Options{N: 2000, Seed: 1})
	held, _ := dataset.Open("faces", dataset.Options{N: 300, Seed: 99})
	o, err := TrainOracle(train, held, be, OracleOptions{Steps: 120, Batch: 32})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("held-out R²: %v", o.R2)
	for _, f := range []string{"hair_length", "face_width", "skin_tone"} {
		if o.R2[f] < 0.5 {
			t.Errorf("R²(%s) = %.2f after a short training, want ≥ 0.5", f, o.R2[f])
		}
	}
	dir := filepath.Join(t.TempDir(), "oracle")
	if err := o.Save(dir); err != nil {
		t.Fatal(err)
	}
	o2, err := LoadOracle(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	pix, _, _ := dataset.Batch(held, []int{0, 1})
	a, _ := o.Predict(pix, 2)
	b, _ := o2.Predict(pix, 2)
	if a[1][3] != b[1][3] {
		t.Fatalf("reloaded oracle predicts %v, original %v", b[1], a[1])
	}
	knownAnswers(t, o, be)
}

// knownAnswers checks the image-level metrics where the answer is known:
// a linear editor commutes in pixels and attributes too (edits are sums),
// and a zero step changes no factor.
func knownAnswers(t *testing.T, o *Oracle, be backends.Backend) {
	dir, err := models.Extract("faces-gan", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := generator.Load(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	d := m.LatentDim()
	a, b := make([]float32, d), make([]float32, d)
	a[0], b[1], b[2] = 1, 0.6, 0.8
	e, err := edit.NewFixed("ganspace", [][]float32{a, b}, nil, be)
	if err != nil {
		t.Fatal(err)
	}
	zs := generator.Latents(5, 3, d)
	c, err := MeasureCommutativity(m, e, o, zs, 2, -1.5)
	if err != nil {
		t.Fatal(err)
	}
	if c.Latent > 1e-6 || c.Image > 1e-4 || c.AttributeMean > 1e-3 || c.Pairs != 1 || len(c.Attribute) != len(o.Factors) {
		t.Fatalf("linear editor commutativity %+v, want ≈0", c)
	}
	before, err := ReadFactors(m, o, zs)
	if err != nil {
		t.Fatal(err)
	}
	target, nuis, err := Identity(m, e, o, zs, before, 0, 0, 0)
	if err != nil || target != 0 || nuis != 0 {
		t.Fatalf("zero step: target %g nuisance %g (%v), want 0", target, nuis, err)
	}
	if _, nuis, _ = Identity(m, e, o, zs, before, 1, 0, 4); !(nuis > 0) {
		t.Fatalf("a step of 4 changed no factor (nuisance %g)", nuis)
	}
}

// killOracle is the run TestOracleKillAndResume kills.
func killOracle(dir string, resume bool) error {
	be, err := engine.NewBackend("")
	if err != nil {
		return err
	}
	train, _ := dataset.Open("faces", dataset.Options{N: 200, Seed: 1})
	held, _ := dataset.Open("faces", dataset.Options{N: 20, Seed: 99})
	_, err = TrainOracle(train, held, be, OracleOptions{Steps: 40, Batch: 8, Dir: dir, Resume: resume})
	return err
}

// TestOracleKillAndResume: SIGKILL after a checkpoint, resume, and the
// oracle's weights and Adam state are the uninterrupted run's, bit for bit.
func TestOracleKillAndResume(t *testing.T) {
	killtest.Run(t, 40, t.TempDir(), t.TempDir(), OracleStateFile, killOracle)
}

func TestMain(m *testing.M) {
	killtest.Main(m, func(name, dir string) error {
		if name == "TestClassifierKillAndResume" {
			return killClassifier(dir, false)
		}
		return killOracle(dir, false)
	})
}
