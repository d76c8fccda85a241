package generator

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"

	_ "latentedit/dataset/faces"
	_ "latentedit/dataset/mnist"
	"latentedit/engine"
)

var testBackend backends.Backend

func be(t testing.TB) backends.Backend {
	t.Helper()
	if testBackend == nil {
		b, err := engine.NewBackend("")
		if err != nil {
			t.Fatal(err)
		}
		testBackend = b
	}
	return testBackend
}

// tiny returns a configuration small enough to train in seconds on 2 cores.
func tiny(kind, data string, steps int) Config {
	c := Default(kind, data)
	c.DataN, c.Base, c.Latent, c.Batch, c.Steps = 256, 8, 16, 16, steps
	c.SampleEvery, c.CheckpointEvery, c.LR = steps, 10, 1e-3
	return c
}

func TestTrainGANFacesTiny(t *testing.T) {
	dir := t.TempDir()
	res, err := Train(tiny("gan", "faces", 20), Options{Out: dir, Backend: be(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("losses %v", res.Losses)
	for _, f := range []string{InfoFile, WeightsFile, TrainStateFile, SamplesPNG, CurvesPNG, CurvesCSV} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	m, err := Load(dir, be(t))
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := m.Generate(Latents(1, 3, m.LatentDim()))
	if err != nil || len(imgs) != 3 || imgs[0].Bounds().Dx() != 32 {
		t.Fatalf("generate: %v %d", err, len(imgs))
	}
}

// TestResumeKeepsTheRunsConfig: --resume takes the settings stored with the
// state, whatever else the command line says, except a longer run.
func TestResumeKeepsTheRunsConfig(t *testing.T) {
	dir := t.TempDir()
	if _, err := Train(tiny("gan", "faces", 8), Options{Out: dir, Backend: be(t)}); err != nil {
		t.Fatal(err)
	}
	other := tiny("vae", "mnist", 12)
	other.Latent = 7
	if _, err := Train(other, Options{Out: dir, Resume: true, Backend: be(t)}); err != nil {
		t.Fatal(err)
	}
	info, err := ReadInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != "gan" || info.Dataset != "faces" || info.LatentDim != 16 || info.Step != 12 {
		t.Fatalf("resumed run is %s on %s, latent %d, step %d; want gan on faces, latent 16, step 12", info.Kind, info.Dataset, info.LatentDim, info.Step)
	}
}

// tinyStyle is a style GAN configuration that trains in seconds, with every
// part switched on: noise, mixing, lazy R1 every 4 steps, truncation.
func tinyStyle(steps int) Config {
	c := tiny("gan", "faces", steps)
	c.ArchKind, c.MapDepth, c.Noise, c.Mixing, c.R1Every, c.Truncation = ArchStyle, 2, true, 0.9, 4, 0.8
	c.Size, c.DataN = 32, 128
	return c
}

func TestTrainStyleGANTiny(t *testing.T) {
	dir := t.TempDir()
	res, err := Train(tinyStyle(12), Options{Out: dir, Backend: be(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("losses %v", res.Losses)
	if !(res.Losses["r1"] > 0) {
		t.Errorf("r1 penalty %v: want a positive measured value", res.Losses["r1"])
	}
	m, err := Load(dir, be(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.Info.Config.ArchName() != ArchStyle || m.Arch.Styles() != 4 {
		t.Fatalf("loaded arch %s with %d styles, want style with 4", m.Info.Config.ArchName(), m.Arch.Styles())
	}
	a, err := m.GenerateFloats(Latents(5, 2, m.LatentDim())[0], 1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.GenerateFloats(Latents(5, 2, m.LatentDim())[0], 1)
	if !slices.Equal(a, b) {
		t.Fatal("a style generator with noise is not a function of its latent at sampling")
	}
	// GANSpace and SeFa read the first mapping layer.
	w, err := m.FirstLayerWeights()
	if err != nil || len(w) != 16 || len(w[0]) != 16 {
		t.Fatalf("first-layer weights: %v, %d rows", err, len(w))
	}
	acts, err := m.FirstLayerActivations(Latents(1, 3, 16))
	if err != nil || len(acts) != 3 || len(acts[0]) != 16 {
		t.Fatalf("first-layer activations: %v, %d rows", err, len(acts))
	}
}

// TestTrainRefusesImportOnlyArchs: the imported architectures have no
// discriminator or training step here; Train says so instead of failing later.
func TestTrainRefusesImportOnlyArchs(t *testing.T) {
	for _, arch := range []string{ArchSNResNet, ArchStyleGAN2} {
		cfg := tiny("gan", "faces", 2)
		cfg.ArchKind = arch
		dir := filepath.Join(t.TempDir(), "m")
		_, err := Train(cfg, Options{Out: dir, Backend: be(t)})
		if err == nil || !strings.Contains(err.Error(), "import-only") {
			t.Errorf("%s: %v, want an import-only refusal", arch, err)
		}
		if _, statErr := os.Stat(dir); statErr == nil {
			t.Errorf("%s: %s was created", arch, dir)
		}
	}
}

// TestTrainStyleGANTwoConvs: --convs 2 adds a second modulated convolution
// to every upsampling block (not to the 4×4 one), reading the block's style.
func TestTrainStyleGANTwoConvs(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyStyle(4)
	cfg.Convs = 2
	res, err := Train(cfg, Options{Out: dir, Backend: be(t)})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range res.Losses {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("loss %s is %v", k, v)
		}
	}
	m, err := Load(dir, be(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.Arch.Styles() != 4 {
		t.Errorf("styles %d, want 4 (one per block, as with one convolution)", m.Arch.Styles())
	}
	for i := 0; i <= m.Arch.Ups; i++ {
		v := m.Context().GetVariableByScopeAndName(fmt.Sprintf("/generator/block%d/conv1", i), "weights")
		if (v != nil) != (i > 0) {
			t.Errorf("block %d: second convolution present %v, want %v", i, v != nil, i > 0)
		}
	}
	if _, err := m.GenerateFloats(m.Latent(1), 1); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		arch  string
		convs int
	}{{ArchStyle, 3}, {ArchDCGAN, 2}, {ArchStyle, -1}} {
		bad := tinyStyle(4)
		bad.ArchKind, bad.Convs = c.arch, c.convs
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "convs") {
			t.Errorf("%s with convs %d: %v, want a refusal naming convs", c.arch, c.convs, err)
		}
	}
}
