package server

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"latentedit/generator"
	"latentedit/invert"
	"latentedit/workspace"
)

// TestUploadsStartFromTheGANsEncoder: with an encoder trained for the GAN
// in its work folder, the server offers the encoder's one pass, refines from
// its guess by default (never ending below it), and refuses to start on a
// spoiled encoder, naming the file.
func TestUploadsStartFromTheGANsEncoder(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small encoder")
	}
	t.Chdir(t.TempDir())
	ws, err := workspace.Open("faces-gan", "")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(ws.Work, invert.EncoderDirName(generator.SpaceZ))
	if _, _, err := invert.TrainEncoder(ws.Model, invert.TrainConfig{Steps: 20, Batch: 8, Base: 8, Hidden: 32, HeldOut: 8},
		invert.TrainOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	s, err := New(ws, Config{Model: "faces-gan", InvertSteps: 6, Rate: -1})
	if err != nil {
		t.Fatal(err)
	}
	if in := s.info.Invert; in.Start != "encoder" || in.Default != InvertOptimise || !slices.Contains(in.Methods, InvertEncoder) {
		t.Fatalf("invert info %+v: want start encoder, default optimise, the encoder offered", in)
	}
	img, err := Render(s.m, generator.Latent(91, 64))
	if err != nil {
		t.Fatal(err)
	}
	target, _, err := s.targetFloats(img)
	if err != nil {
		t.Fatal(err)
	}
	job := func() *invertJob { return &invertJob{polled: time.Now(), cancel: func() {}} }
	guess, err := s.invert(context.Background(), job(), InvertRequest{Method: InvertEncoder}, target)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := invert.LoadEncoder(dir, s.m)
	if err != nil {
		t.Fatal(err)
	}
	want, err := enc.Encode(target, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(guess, want) {
		t.Fatalf("method encoder gave %v…, the encoder %v…", guess[:3], want[:3])
	}
	j := job()
	z, err := s.invert(context.Background(), j, InvertRequest{Method: InvertOptimise, Steps: 6}, target)
	if err != nil {
		t.Fatal(err)
	}
	mse := func(z []float32) float64 {
		pix, err := s.m.GenerateFloats(z, 1)
		if err != nil {
			t.Fatal(err)
		}
		return invert.MSE(pix, target)
	}
	if st := j.status(); st.Step != 6 || mse(z) > mse(guess) {
		t.Fatalf("refined: step %d, error %.4f vs the guess's %.4f", st.Step, mse(z), mse(guess))
	}
	// A spoiled encoder stops the server from starting.
	w := filepath.Join(dir, invert.EncoderWeights)
	raw, _ := os.ReadFile(w)
	raw[len(raw)/3] ^= 1
	os.WriteFile(w, raw, 0o644)
	if _, err := New(ws, Config{Model: "faces-gan", Rate: -1}); err == nil || !strings.Contains(err.Error(), invert.EncoderWeights) {
		t.Fatalf("spoiled encoder: %v", err)
	}
}
