package generator

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"latentedit/engine"
	"latentedit/models"
	"latentedit/train/killtest"
)

// curve reads column col of dir's curves.csv.
func curve(t *testing.T, dir, col string) []float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, CurvesCSV))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	k := -1
	for i, h := range rows[0] {
		if h == col {
			k = i
		}
	}
	if k < 0 {
		t.Fatalf("no column %s in %v", col, rows[0])
	}
	var out []float64
	for _, r := range rows[1:] {
		v, _ := strconv.ParseFloat(r[k], 64)
		out = append(out, v)
	}
	return out
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// TestGANLossMovesMNIST: on real MNIST digits the discriminator learns to
// tell real from fake within 30 steps: its loss falls from log 4 ≈ 1.386.
func TestGANLossMovesMNIST(t *testing.T) {
	dir := t.TempDir()
	cfg := tiny("gan", "mnist", 30)
	if _, err := Train(cfg, Options{Out: dir, Backend: be(t)}); err != nil {
		t.Fatal(err)
	}
	d := curve(t, dir, "loss_d")
	first, last := mean(d[:3]), mean(d[len(d)-5:])
	t.Logf("loss_d first %.3f last %.3f", first, last)
	if !(last < first-0.1) {
		t.Fatalf("discriminator loss did not fall: %.3f → %.3f", first, last)
	}
	info, err := ReadInfo(dir)
	if err != nil || info.Step != 30 || info.Channels != 1 || info.Height != 28 {
		t.Fatalf("model.json: %+v %v", info, err)
	}
}

func TestVAELossFalls(t *testing.T) {
	dir := t.TempDir()
	cfg := tiny("vae", "faces", 30)
	if _, err := Train(cfg, Options{Out: dir, Backend: be(t)}); err != nil {
		t.Fatal(err)
	}
	l := curve(t, dir, "loss")
	first, last := mean(l[:3]), mean(l[len(l)-5:])
	t.Logf("VAE loss first %.1f last %.1f", first, last)
	if !(last < 0.7*first) {
		t.Fatalf("VAE loss did not fall by 30%%: %.1f → %.1f", first, last)
	}
	m, err := Load(dir, be(t))
	if err != nil {
		t.Fatal(err)
	}
	imgs, _ := m.Generate(Latents(3, 2, m.LatentDim()))
	z, err := m.Encode(imgs)
	if err != nil || len(z) != 2 || len(z[0]) != m.LatentDim() {
		t.Fatalf("encode: %v", err)
	}
}

func TestTrainStopsOnNaN(t *testing.T) {
	dir := t.TempDir()
	cfg := tiny("vae", "faces", 40)
	cfg.LR, cfg.CheckpointEvery = 1e12, 1
	_, err := Train(cfg, Options{Out: dir, Backend: be(t)})
	if !errors.Is(err, ErrNonFinite) {
		t.Fatalf("err = %v, want a non-finite stop", err)
	}
	if !strings.Contains(err.Error(), "last good checkpoint") {
		t.Errorf("error does not say what was kept: %v", err)
	}
	// What was kept loads and generates finite images.
	if _, err := ReadInfo(dir); err == nil {
		m, err := Load(dir, be(t))
		if err != nil {
			t.Fatal(err)
		}
		pix, err := m.GenerateFloats(make([]float32, m.LatentDim()), 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range pix {
			if math.IsNaN(float64(v)) {
				t.Fatal("the kept checkpoint generates NaN")
			}
		}
	}
}

// trainedDir trains a tiny GAN once for the loader tests.
func trainedDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := Train(tiny("gan", "faces", 2), Options{Out: dir, Backend: be(t)}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadRefusesBadModels(t *testing.T) {
	src := trainedDir(t)
	copyDir := func(t *testing.T) string {
		dst := t.TempDir()
		for _, f := range []string{InfoFile, WeightsFile} {
			b, _ := os.ReadFile(filepath.Join(src, f))
			os.MkdirAll(filepath.Dir(filepath.Join(dst, f)), 0o755)
			os.WriteFile(filepath.Join(dst, f), b, 0o644)
		}
		return dst
	}
	editInfo := func(dir string, fn func(m map[string]any)) {
		var m map[string]any
		b, _ := os.ReadFile(filepath.Join(dir, InfoFile))
		json.Unmarshal(b, &m)
		fn(m)
		b, _ = json.Marshal(m)
		os.WriteFile(filepath.Join(dir, InfoFile), b, 0o644)
	}
	cases := []struct {
		name, want string
		break_     func(dir string)
	}{
		{"missing weights", "weights.ckpt", func(d string) { os.Remove(filepath.Join(d, WeightsFile)) }},
		{"missing model.json", "model.json", func(d string) { os.Remove(filepath.Join(d, InfoFile)) }},
		{"truncated weights", "sha256", func(d string) {
			p := filepath.Join(d, WeightsFile)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
		}},
		{"other format version", "format_version", func(d string) { editInfo(d, func(m map[string]any) { m["format_version"] = 99 }) }},
		{"corrupt json", "model.json", func(d string) { os.WriteFile(filepath.Join(d, InfoFile), []byte("{"), 0o644) }},
		{"shapes disagree", "weights.ckpt", func(d string) {
			editInfo(d, func(m map[string]any) {
				m["latent_dim"] = 32
				m["config"].(map[string]any)["latent_dim"] = 32
			})
		}},
		{"latent mismatch", "latent_dim", func(d string) { editInfo(d, func(m map[string]any) { m["latent_dim"] = 3 }) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := copyDir(t)
			tc.break_(d)
			_, err := Load(d, be(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestKillAndResume: SIGKILL after a checkpoint, --resume, and every
// variable (weights, optimiser state, EMA) is the same, bit for bit, as in an
// uninterrupted run of the same seed.
func TestKillAndResume(t *testing.T) {
	killtest.Run(t, killCfg(t.Name()).Steps, t.TempDir(), t.TempDir(), TrainStateFile, func(dir string, resume bool) error {
		_, err := Train(killCfg(t.Name()), Options{Out: dir, Resume: resume, Backend: be(t)})
		return err
	})
}

// TestKillAndResumeStyle: the same for the style GAN, whose state adds the
// random stream of its noise, the mean w and the lazy R1 step.
func TestKillAndResumeStyle(t *testing.T) {
	killtest.Run(t, killCfg(t.Name()).Steps, t.TempDir(), t.TempDir(), TrainStateFile, func(dir string, resume bool) error {
		_, err := Train(killCfg(t.Name()), Options{Out: dir, Resume: resume, Backend: be(t)})
		return err
	})
}

// killCfg is the run of kill test name.
func killCfg(name string) Config {
	cfg := tiny("gan", "faces", 16)
	if name == "TestKillAndResumeStyle" {
		cfg = tinyStyle(16)
	}
	cfg.CheckpointEvery = 4
	return cfg
}

// TestGenerateChunkedIndependentOfCall: a latent's pixels are the same
// whether it is rendered alone, among 3 or among 11, and equal a plain
// GenerateFloats at the chunk's batch size.
func TestGenerateChunkedIndependentOfCall(t *testing.T) {
	be, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := models.Extract("mnist-gan", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	zs := Latents(3, 11, m.LatentDim())
	h, w, c := m.ImageShape()
	sz := h * w * c
	all, err := m.GenerateChunked(zs, 4)
	if err != nil {
		t.Fatal(err)
	}
	some, err := m.GenerateChunked(zs[8:], 4)
	if err != nil {
		t.Fatal(err)
	}
	one, err := m.GenerateChunked(zs[9:10], 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 11*sz || len(some) != 3*sz || len(one) != sz {
		t.Fatalf("lengths %d, %d, %d", len(all), len(some), len(one))
	}
	if !slices.Equal(all[8*sz:], some) || !slices.Equal(all[9*sz:10*sz], one) {
		t.Fatal("a latent's pixels depend on the other latents of the call")
	}
	if _, err := m.GenerateChunked([][]float32{{1, 2}}, 4); err == nil {
		t.Error("a latent of 2 values accepted")
	}
}
