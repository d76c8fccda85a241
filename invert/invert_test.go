package invert

import (
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "latentedit/dataset/faces"
	"latentedit/engine"
	"latentedit/generator"
	"latentedit/models"
	"latentedit/train/killtest"
)

// load loads an embedded model into a fresh context.
func load(t testing.TB, name string) *generator.Model {
	t.Helper()
	m, err := loadModel(name, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func loadModel(name, tmp string) (*generator.Model, error) {
	be, err := engine.NewBackend("")
	if err != nil {
		return nil, err
	}
	dir, err := models.Extract(name, tmp)
	if err != nil {
		return nil, err
	}
	return generator.Load(dir, be)
}

// TestFitRecordsTheCrop: a wide picture's centre square is taken, and the
// crop maps the model picture's corners back onto it.
func TestFitRecordsTheCrop(t *testing.T) {
	img := image.NewRGBA(image.Rect(10, 20, 10+90, 20+30)) // 90×30 off the origin
	for y := 20; y < 50; y++ {
		for x := 10; x < 100; x++ {
			if x >= 40 && x < 70 { // the middle third is white
				img.Set(x, y, color.White)
			}
		}
	}
	fit, c := Fit(img, 8, 8)
	if want := (Crop{SourceW: 90, SourceH: 30, X0: 30, Y0: 0, Side: 30, Size: 8}); c != want {
		t.Fatalf("crop %+v, want %+v", c, want)
	}
	if r, _, _, _ := fit.At(4, 4).RGBA(); r>>8 != 255 {
		t.Errorf("centre pixel %v: want the white middle", fit.At(4, 4))
	}
	if x, y := c.ToSource(8, 8); x != 60 || y != 30 {
		t.Errorf("corner (8, 8) maps to (%g, %g), want (60, 30)", x, y)
	}
}

// TestReadPicturesRefusals: a file that is not a picture, an empty
// directory, a dangling entry and a missing path are each refused with the
// file named.
func TestReadPicturesRefusals(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "a.png")
	writePNG(t, good, 40, 20)
	pics, err := ReadPictures(dir, 8, 8, 3)
	if err != nil || len(pics) != 1 || len(pics[0].Pixels) != 8*8*3 || pics[0].Crop.Side != 20 {
		t.Fatalf("one good picture: %v %+v", err, pics)
	}
	bad := filepath.Join(dir, "b.png")
	os.WriteFile(bad, []byte("hello, not a picture"), 0o644)
	if _, err := ReadPictures(dir, 8, 8, 3); !errors.Is(err, ErrNotImage) || !strings.Contains(err.Error(), bad) {
		t.Errorf("a text file among the pictures: %v", err)
	}
	os.Remove(bad)
	os.Symlink(filepath.Join(dir, "nowhere.png"), filepath.Join(dir, "c.png"))
	if _, err := ReadPictures(dir, 8, 8, 3); err == nil || !strings.Contains(err.Error(), "c.png") {
		t.Errorf("a dangling entry: %v", err)
	}
	if _, err := ReadPictures(t.TempDir(), 8, 8, 3); err == nil || !strings.Contains(err.Error(), "no .png") {
		t.Errorf("an empty directory: %v", err)
	}
	if _, err := ReadPictures(filepath.Join(dir, "missing"), 8, 8, 3); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing path: %v", err)
	}
	if os.Geteuid() != 0 { // root reads every directory
		locked := filepath.Join(t.TempDir(), "locked")
		os.Mkdir(locked, 0o000)
		if _, err := ReadPictures(locked, 8, 8, 3); err == nil || !strings.Contains(err.Error(), "locked") {
			t.Errorf("an unreadable directory: %v", err)
		}
	}
}

func writePNG(t *testing.T, path string, w, h int) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// TestInversionRecoversAGeneratedPicture: from seeded starts, refinement on
// the MNIST GAN brings a generated picture's PSNR well above the start's,
// and never ends below it.
func TestInversionRecoversAGeneratedPicture(t *testing.T) {
	m := load(t, "mnist-gan")
	target, err := m.GenerateFloats(m.Latent(4242), 1)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := New(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Guesser() != "seeds" {
		t.Fatalf("guesser %s, want seeds", inv.Guesser())
	}
	steps := 60
	if testing.Short() {
		steps = 25
	}
	calls := 0
	fits, err := inv.Invert([][]float32{target}, Options{Steps: steps}, Hooks{Step: func(int, []float64) error { calls++; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	f := fits[0]
	t.Logf("PSNR %.2f dB from %.2f dB at the best seeded start, %d steps", f.PSNR, f.GuessPSNR, steps)
	if calls != steps {
		t.Errorf("step hook called %d times, want %d", calls, steps)
	}
	if f.PSNR < f.GuessPSNR+3 || f.PSNR < 15 {
		t.Fatalf("PSNR %.2f dB from %.2f dB: want ≥ 3 dB better and ≥ 15 dB", f.PSNR, f.GuessPSNR)
	}
	// The latent's picture is the one scored.
	got, err := m.GenerateFloats(f.Latent, 1)
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(PSNR(MSE(got, target)) - f.PSNR); d > 0.05 {
		t.Errorf("re-rendered PSNR differs from the reported one by %.3f dB", d)
	}
	// A hook's error stops the run.
	stop := errors.New("stop")
	if _, err := inv.Invert([][]float32{target}, Options{Steps: 5}, Hooks{Step: func(int, []float64) error { return stop }}); !errors.Is(err, stop) {
		t.Errorf("a failing hook: %v", err)
	}
}

// tinyEncoder trains in seconds on the MNIST GAN.
func tinyEncoder(steps int) TrainConfig {
	return TrainConfig{Steps: steps, Batch: 16, Base: 8, Hidden: 64, LR: 2e-3, CheckpointEvery: max(1, steps/4), HeldOut: 64}
}

// TestEncoderLearnsAndStartsTheInversion: the latent error falls during a
// short training; the held-out latent error is below the zero predictor's
// (E z² = 1), so the encoder reads something of z off the picture; the
// saved encoder loads back and gives an inversion a start no worse than
// seeded starts; and a spoiled or foreign encoder is refused by name.
func TestEncoderLearnsAndStartsTheInversion(t *testing.T) {
	if testing.Short() {
		t.Skip("trains an encoder (about ten seconds on 2 cores)")
	}
	m := load(t, "mnist-gan")
	dir := t.TempDir()
	e, res, err := TrainEncoder(m, tinyEncoder(150), TrainOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	lat := res.Curves.Series("latent_mse", "").Y
	first, last := mean(lat[:10]), mean(lat[len(lat)-10:])
	t.Logf("latent MSE %.3f → %.3f; held out %+v", first, last, *e.HeldOut)
	if last > 0.9*first {
		t.Errorf("latent MSE %.3f → %.3f: did not fall by 10%%", first, last)
	}
	if e.HeldOut.LatentMSE > 0.95 {
		t.Errorf("held-out latent MSE %.3f: no better than guessing zero (1.0)", e.HeldOut.LatentMSE)
	}
	m2 := load(t, "mnist-gan") // a fresh context: the loaded encoder has its own
	le, err := LoadEncoder(dir, m2)
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := New(m2, le)
	if inv.Guesser() != "encoder" {
		t.Fatalf("guesser %s", inv.Guesser())
	}
	targets := [][]float32{}
	for _, s := range []int64{777, 778, 779, 780} {
		x, _ := m2.GenerateFloats(m2.Latent(s), 1)
		targets = append(targets, x)
	}
	withEnc, err := inv.Invert(targets, Options{}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	seeded, err := inv.Invert(targets, Options{NoGuess: true}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	var pe, ps float64
	for i := range targets {
		pe, ps = pe+withEnc[i].PSNR/4, ps+seeded[i].PSNR/4
	}
	t.Logf("start PSNR: encoder %.2f dB, best of %d seeds %.2f dB", pe, DefaultCandidates, ps)
	if pe < ps {
		t.Errorf("the encoder's guess (%.2f dB) is worse than the best seeded start (%.2f dB)", pe, ps)
	}

	// Refusals, each naming the file and what is wrong.
	spec, _ := os.ReadFile(filepath.Join(dir, EncoderSpec))
	weights, _ := os.ReadFile(filepath.Join(dir, EncoderWeights))
	spoiled := append([]byte(nil), weights...)
	spoiled[len(spoiled)/2] ^= 0x40
	os.WriteFile(filepath.Join(dir, EncoderWeights), spoiled, 0o644)
	if _, err := LoadEncoder(dir, m2); err == nil || !strings.Contains(err.Error(), EncoderWeights) || !strings.Contains(err.Error(), "weights_sha256") {
		t.Errorf("spoiled weights: %v", err)
	}
	os.WriteFile(filepath.Join(dir, EncoderWeights), weights, 0o644)
	for _, tc := range []struct{ from, to, field string }{
		{`"space": "z"`, `"space": "w"`, "space"},
		{`"model_weights_sha256": "`, `"model_weights_sha256": "0`, "model_weights_sha256"},
		{`"format_version": 1`, `"format_version": 7`, "format_version"},
		{`"latent_dim": 64`, `"latent_dim": 63`, "latent_dim"},
	} {
		os.WriteFile(filepath.Join(dir, EncoderSpec), []byte(strings.Replace(string(spec), tc.from, tc.to, 1)), 0o644)
		if _, err := LoadEncoder(dir, m2); err == nil || !strings.Contains(err.Error(), EncoderSpec) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("spec with %s: %v", tc.to, err)
		}
	}
	os.WriteFile(filepath.Join(dir, EncoderSpec), []byte("{"), 0o644)
	if _, err := LoadEncoder(dir, m2); err == nil || !strings.Contains(err.Error(), EncoderSpec) {
		t.Errorf("truncated spec: %v", err)
	}
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// TestEncoderKillAndResume: a killed encoder training resumes to the same
// state, bit for bit, as an uninterrupted one.
func TestEncoderKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("trains an encoder three times")
	}
	killtest.Run(t, 40, t.TempDir(), t.TempDir(), "train.ckpt", func(dir string, resume bool) error {
		return killEncoder(t.TempDir(), dir, resume)
	})
}

func killEncoder(tmp, dir string, resume bool) error {
	m, err := loadModel("mnist-gan", tmp)
	if err != nil {
		return err
	}
	cfg := tinyEncoder(40)
	cfg.CheckpointEvery = 2
	_, _, err = TrainEncoder(m, cfg, TrainOptions{Dir: dir, Resume: resume})
	return err
}

func TestMain(m *testing.M) {
	killtest.Main(m, func(_, dir string) error {
		tmp, err := os.MkdirTemp("", "killtest-model")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		return killEncoder(tmp, dir, false)
	})
}

// TestStyleGeneratorInvertsInWPlus: on a (barely trained) style generator
// seen in W+, an encoder trains on lifted codes, refinement moves one code
// per style layer, and an encoder of W+ is refused for the model in Z.
func TestStyleGeneratorInvertsInWPlus(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a tiny style GAN and an encoder")
	}
	be, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	cfg := generator.Default("gan", "faces")
	cfg.DataN, cfg.Base, cfg.Latent, cfg.Batch, cfg.Steps, cfg.SampleEvery, cfg.CheckpointEvery = 64, 8, 16, 8, 2, 2, 2
	cfg.ArchKind, cfg.MapDepth, cfg.Size = generator.ArchStyle, 2, 32
	dir := t.TempDir()
	if _, err := generator.Train(cfg, generator.Options{Out: dir, Backend: be}); err != nil {
		t.Fatal(err)
	}
	root, err := generator.Load(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	m, err := root.InSpace(generator.SpaceWPlus)
	if err != nil {
		t.Fatal(err)
	}
	if m.LatentDim() != m.Frame().Styles*16 {
		t.Fatalf("w+ codes of %d values", m.LatentDim())
	}
	enc, _, err := TrainEncoder(m, TrainConfig{Steps: 6, Batch: 4, Base: 4, Hidden: 16, HeldOut: 8}, TrainOptions{Dir: filepath.Join(t.TempDir(), EncoderDirName(m.Space()))})
	if err != nil {
		t.Fatal(err)
	}
	if enc.Space != generator.SpaceWPlus || enc.LatentDim != m.LatentDim() {
		t.Fatalf("encoder of %s with %d values", enc.Space, enc.LatentDim)
	}
	if _, err := New(root, enc); err == nil || !strings.Contains(err.Error(), "w+") {
		t.Errorf("a w+ encoder for the model in z: %v", err)
	}
	target, err := m.GenerateFloats(m.Latent(99), 1)
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := New(m, nil)
	fits, err := inv.Invert([][]float32{target}, Options{Steps: 30}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("w+: PSNR %.2f dB from %.2f dB", fits[0].PSNR, fits[0].GuessPSNR)
	if fits[0].PSNR < fits[0].GuessPSNR+1 || len(fits[0].Latent) != m.LatentDim() {
		t.Errorf("w+ refinement: PSNR %.2f dB from %.2f dB, %d values", fits[0].PSNR, fits[0].GuessPSNR, len(fits[0].Latent))
	}
}

// TestEncoderReconstructionLoss: with Recon > 0 the encoder also reads the
// model's training pictures and is scored, through the frozen generator,
// on reproducing them; the loss is the latent error plus Recon times it.
func TestEncoderReconstructionLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("trains an encoder through the faces GAN")
	}
	m := load(t, "faces-gan")
	cfg := TrainConfig{Steps: 12, Batch: 4, Base: 4, Hidden: 16, HeldOut: 4, Recon: 2}
	e, res, err := TrainEncoder(m, cfg, TrainOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	loss, lat, rec := res.Curves.Series("loss", "").Y, res.Curves.Series("latent_mse", "").Y, res.Curves.Series("recon_mse", "").Y
	for i := range loss {
		if !(rec[i] > 0) || math.Abs(loss[i]-(lat[i]+2*rec[i])) > 1e-4*loss[i] {
			t.Fatalf("step %d: loss %g, latent %g, recon %g", i+1, loss[i], lat[i], rec[i])
		}
	}
	t.Logf("recon MSE %.4f → %.4f", mean(rec[:4]), mean(rec[len(rec)-4:]))
	if e.Recon != 2 {
		t.Errorf("spec recon %g", e.Recon)
	}
}
