package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"latentedit/models"
)

// qualityFile is the part of quality.json the command tests read.
type qualityFile struct {
	Model        string  `json:"model"`
	Dataset      string  `json:"dataset"`
	Kind         string  `json:"kind"`
	N            int     `json:"n"`
	Frechet      float64 `json:"frechet"`
	FrechetReal  float64 `json:"frechet_real_vs_real"`
	FrechetRatio float64 `json:"frechet_ratio"`
	Precision    float64 `json:"precision"`
	Recall       float64 `json:"recall"`
	Judge        struct {
		Kind         string   `json:"kind"`
		Size         int      `json:"size"`
		TestAccuracy *float64 `json:"test_accuracy"`
	} `json:"judge"`
	Factors []struct {
		Name string  `json:"name"`
		W1   float64 `json:"w1_spreads"`
	} `json:"factors"`
	Modes []struct {
		Group  string  `json:"group"`
		Sample float64 `json:"sample"`
	} `json:"modes"`
	Artefacts *struct {
		Sample       float64 `json:"sample_rate"`
		SampleCounts [4]int  `json:"sample_disc_counts"`
	} `json:"artefacts"`
	PSNR   *float64 `json:"reconstruction_psnr_db"`
	Checks []struct {
		Target string `json:"target"`
		Pass   bool   `json:"pass"`
	} `json:"checks"`
}

// runQuality runs evaluate --quality --json with args and reads the
// quality.json it names.
func runQuality(t *testing.T, args ...string) (qualityFile, map[string]json.RawMessage) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(append([]string{"evaluate", "--quality", "--quality-n", "64", "--json"}, args...), &out, &errb); code != 0 {
		t.Fatalf("evaluate --quality %v: %d %s", args, code, errb.String())
	}
	var printed map[string]json.RawMessage
	if err := json.Unmarshal(out.Bytes(), &printed); err != nil {
		t.Fatalf("--json printed %q: %v", out.String(), err)
	}
	var path string
	json.Unmarshal(printed["quality_json"], &path)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var q qualityFile
	if err := json.Unmarshal(raw, &q); err != nil {
		t.Fatal(err)
	}
	if page, err := os.ReadFile(filepath.Join(filepath.Dir(path), "quality.html")); err != nil || !strings.Contains(string(page), "Generative quality") {
		t.Errorf("quality.html beside quality.json: %v", err)
	}
	return q, printed
}

// TestEvaluateQuality runs `evaluate --quality` on embedded models: MNIST
// (classifier, digit checks; without its editors, no study), fundus (oracle and
// the segmenter's disc count), the faces VAE judged by the faces GAN's
// oracle (reconstruction PSNR), and the faces GAN with one editor, whose
// study report then carries the quality section.
func TestEvaluateQuality(t *testing.T) {
	t.Chdir(t.TempDir())
	bare, err := models.Extract("mnist-gan", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(bare, "editors")); err != nil {
		t.Fatal(err)
	}
	m, printed := runQuality(t, "--model", bare)
	if m.Model != bare || m.N != 64 || m.Judge.Kind != "classifier" || m.Judge.TestAccuracy == nil || *m.Judge.TestAccuracy < 0.98 ||
		len(m.Modes) != 10 || len(m.Checks) != 10 || len(m.Factors) != 0 || !(m.FrechetRatio > 0) {
		t.Errorf("mnist-gan quality %+v", m)
	}
	if _, ok := printed["report"]; ok {
		t.Error("a model without editors ran the study")
	}
	f, _ := runQuality(t, "--model", "fundus-gan", "--study=false")
	if f.Judge.Kind != "oracle" || f.Judge.Size != 64 || f.Artefacts == nil || len(f.Checks) != 5 {
		t.Fatalf("fundus-gan quality %+v", f)
	}
	if c := f.Artefacts.SampleCounts; c[0]+c[1]+c[2]+c[3] != 64 {
		t.Errorf("disc counts %v of 64 samples", c)
	}
	v, _ := runQuality(t, "--model", "faces-vae", "--oracle", "faces-gan")
	if v.Kind != "vae" || v.PSNR == nil || *v.PSNR < 10 || len(v.Checks) != 1 || len(v.Factors) != 10 {
		t.Errorf("faces-vae quality %+v", v)
	}
	g, printed := runQuality(t, "--model", "faces-gan", "--editors", "sefa", "--n", "2", "--comm-n", "1", "--seeds", "3")
	if g.Precision < 0 || g.Recall > 1 || len(g.Checks) < 13 || len(g.Modes) != 21 {
		t.Errorf("faces-gan quality %+v", g)
	}
	var report string
	json.Unmarshal(printed["report"], &report)
	page, err := os.ReadFile(report)
	if err != nil || !strings.Contains(string(page), `id="quality"`) {
		t.Errorf("the study report %s has no quality section (%v)", report, err)
	}
	raw, _ := os.ReadFile(filepath.Join(filepath.Dir(report), "metrics.json"))
	var metrics struct{ Quality *qualityFile }
	if json.Unmarshal(raw, &metrics); metrics.Quality == nil || metrics.Quality.Frechet != g.Frechet {
		t.Errorf("metrics.json quality %+v, quality.json Fréchet %g", metrics.Quality, g.Frechet)
	}
	for _, bad := range [][]string{
		{"evaluate", "--model", "faces-gan", "--quality", "--quality-n", "3"},
		{"evaluate", "--model", "faces-gan", "--quality", "--quality", "x"},
	} {
		var out, errb bytes.Buffer
		if code := run(bad, &out, &errb); code != exitUsage {
			t.Errorf("%v: code %d, want %d (%s)", bad, code, exitUsage, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"evaluate", "--model", "faces-vae", "--quality", "--quality-n", "8", "--oracle", "fundus-gan"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "resolution") {
		t.Errorf("faces-vae judged by the fundus oracle: code %d, %s", code, errb.String())
	}
}
