package generator

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"latentedit/dataset"
	"latentedit/internal/mixture"
	"latentedit/models"
)

// vaeCopy copies the embedded faces VAE into a temporary directory without
// its shipped prior.
func vaeCopy(t *testing.T) string {
	t.Helper()
	sub, err := models.FS("faces-vae")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "vae")
	if err := os.CopyFS(dir, sub); err != nil {
		t.Fatal(err)
	}
	info, err := ReadInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Prior == nil {
		t.Fatal("the shipped faces VAE has no prior")
	}
	info.Prior = nil
	if err := writeInfo(dir, info); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, PriorFile))
	return dir
}

// TestPriorFitAttachDraw fits a small prior to the faces VAE's encodings,
// attaches it, and checks that seeds are drawn through it.
func TestPriorFitAttachDraw(t *testing.T) {
	dir := vaeCopy(t)
	m, err := Load(dir, be(t))
	if err != nil {
		t.Fatal(err)
	}
	// Without a prior a seed is the standard-normal latent, bit for bit.
	if !slices.Equal(m.Latent(7), Latent(7, m.LatentDim())) {
		t.Fatal("without a prior, Model.Latent differs from Latent")
	}
	train, _ := m.Info.OpenData(dataset.Options{N: 400, Seed: 0})
	held, _ := m.Info.OpenData(dataset.Options{N: 40, Seed: 1, Split: "test"})
	p, fit, err := FitPrior(m, train, held, 400, mixture.Options{K: 4, Seed: 1, Reg: 1e-4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("K 4 on 400 encodings: %d iterations, held-out log-density %.1f, N(0, I) %.1f", fit.Iterations, fit.HeldOutLogDensity, fit.HeldOutNormal)
	// The encodings are not N(0, I): the mixture explains held-out ones far better.
	if !(fit.HeldOutLogDensity > fit.HeldOutNormal+10) {
		t.Errorf("held-out log-density %.1f under the prior, %.1f under N(0, I): want the prior better by > 10 nats", fit.HeldOutLogDensity, fit.HeldOutNormal)
	}
	if err := AttachPrior(dir, p, PriorInfo{Images: 400, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	m2, err := Load(dir, be(t))
	if err != nil {
		t.Fatal(err)
	}
	if m2.Prior() == nil || len(m2.Prior().Weights) != 4 {
		t.Fatal("the attached prior did not load")
	}
	// Seed s: ε is Latent(s)'s stream, the component the next uniform.
	z, eps := m2.Latent(7), Latent(7, m.LatentDim())
	if slices.Equal(z, eps) {
		t.Fatal("with a prior, the seed's latent is still the standard-normal one")
	}
	if !slices.Equal(z, m2.Latent(7)) {
		t.Fatal("a seed's latent is not reproducible")
	}
	found := false
	for c := range p.Weights {
		ok, d := true, m.LatentDim()
		for i := 0; i < d && ok; i++ {
			s := float64(float32(p.Means[c][i]))
			for j := 0; j <= i; j++ {
				s += float64(float32(p.Chol[c][i*d+j])) * float64(eps[j])
			}
			ok = math.Abs(s-float64(z[i])) < 1e-4
		}
		found = found || ok
	}
	if !found {
		t.Error("the seed's latent is μ_c + L_c ε for no component c")
	}
	pix, err := m2.GenerateFloats(z, 1)
	if err != nil || len(pix) == 0 {
		t.Fatalf("decode: %v", err)
	}
}

func TestLoadRefusesBadPrior(t *testing.T) {
	src := vaeCopy(t)
	m, err := Load(src, be(t))
	if err != nil {
		t.Fatal(err)
	}
	train, _ := m.Info.OpenData(dataset.Options{N: 64, Seed: 0})
	p, _, err := FitPrior(m, train, train, 64, mixture.Options{K: 2, Seed: 1, Reg: 1e-3, MaxIter: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := AttachPrior(src, p, PriorInfo{Images: 64}); err != nil {
		t.Fatal(err)
	}
	editInfo := func(f func(map[string]any)) func(dir string) {
		return func(dir string) {
			path := filepath.Join(dir, InfoFile)
			raw, _ := os.ReadFile(path)
			var v map[string]any
			json.Unmarshal(raw, &v)
			f(v)
			raw, _ = json.Marshal(v)
			os.WriteFile(path, raw, 0o644)
		}
	}
	for _, c := range []struct {
		name   string
		break_ func(dir string)
		want   string
	}{
		{"flipped byte", func(dir string) {
			path := filepath.Join(dir, PriorFile)
			raw, _ := os.ReadFile(path)
			raw[len(raw)/2] ^= 1
			os.WriteFile(path, raw, 0o644)
		}, "does not match"},
		{"missing file", func(dir string) { os.Remove(filepath.Join(dir, PriorFile)) }, "no such file"},
		{"components", editInfo(func(v map[string]any) { v["prior"].(map[string]any)["components"] = 3 }), "prior.components says 3"},
		{"file name", editInfo(func(v map[string]any) { v["prior"].(map[string]any)["file"] = "../x.ckpt" }), "field prior.file"},
		{"sha", editInfo(func(v map[string]any) { v["prior"].(map[string]any)["sha256"] = "abc" }), "field prior.sha256"},
		{"on a GAN", editInfo(func(v map[string]any) {
			v["kind"] = "gan"
			v["config"].(map[string]any)["kind"] = "gan"
		}), "a gan has no fitted prior"},
	} {
		dir := filepath.Join(t.TempDir(), "m")
		if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		c.break_(dir)
		if _, err := Load(dir, be(t)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Load error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// A prior of another latent dimension is refused before anything is written.
	bad := &Prior{Weights: []float64{1}, Means: [][]float64{{0, 0}}, Chol: [][]float64{{1, 0, 0, 1}}}
	before, _ := os.ReadFile(filepath.Join(src, PriorFile))
	if err := AttachPrior(src, bad, PriorInfo{}); err == nil || !strings.Contains(err.Error(), "the dimension is 64") {
		t.Errorf("AttachPrior of a 2-D prior: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(src, PriorFile)); !slices.Equal(before, after) {
		t.Error("a refused AttachPrior changed the prior file")
	}
}

// TestShippedVAEDrawsThroughItsPrior: the embedded faces VAE loads with its
// 64-component prior, and its seeds are the prior's draws.
func TestShippedVAEDrawsThroughItsPrior(t *testing.T) {
	dir, err := models.Extract("faces-vae", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir, be(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.Prior() == nil || len(m.Prior().Weights) != 64 {
		t.Fatalf("shipped faces VAE prior: %v", m.Prior() != nil)
	}
	if slices.Equal(m.Latent(3), Latent(3, m.LatentDim())) {
		t.Error("the shipped VAE's seed 3 is the standard-normal latent")
	}
}
