package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInvertCommand: pictures of any size are inverted into inversions.json
// (latent, space, PSNR, crop) and a grid; a trained encoder becomes the
// start; refusals (a text file, a spoiled encoder, a face for pseudocase)
// name the file and leave no output.
func TestInvertCommand(t *testing.T) {
	t.Chdir(t.TempDir())
	var out, errb bytes.Buffer
	if code := run([]string{"data", "faces", "--n", "1", "--out", "face"}, &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	os.Mkdir("in", 0o755)
	os.Rename("face/images/000000.png", "in/a.png")
	wide := image.NewRGBA(image.Rect(0, 0, 60, 20))
	for i := range wide.Pix {
		wide.Pix[i] = uint8(i)
	}
	f, _ := os.Create("in/b.jpg")
	jpeg.Encode(f, wide, nil)
	f.Close()
	type result struct {
		Space    string `json:"space"`
		Pictures []struct {
			Path   string    `json:"path"`
			Guess  string    `json:"guess"`
			PSNR   float64   `json:"psnr_db"`
			Latent []float32 `json:"latent"`
			Crop   struct {
				SourceW int `json:"source_width"`
				X0      int `json:"x0"`
				Side    int `json:"side"`
			} `json:"crop"`
		} `json:"pictures"`
	}
	read := func(dir string) result {
		t.Helper()
		var r result
		raw, err := os.ReadFile(filepath.Join(dir, "inversions.json"))
		if err != nil || json.Unmarshal(raw, &r) != nil {
			t.Fatalf("inversions.json: %v %s", err, raw)
		}
		if _, err := os.Stat(filepath.Join(dir, "inversions.png")); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if code := run([]string{"invert", "--model", "mnist-gan", "--image", "in", "--out", "o1", "--steps", "3"}, &out, &errb); code != 0 {
		t.Fatalf("invert: %s", errb.String())
	}
	r := read("o1")
	if r.Space != "z" || len(r.Pictures) != 2 || r.Pictures[0].Guess != "seeds" || len(r.Pictures[1].Latent) != 64 ||
		r.Pictures[1].Crop.SourceW != 60 || r.Pictures[1].Crop.X0 != 20 || r.Pictures[1].Crop.Side != 20 || !(r.Pictures[0].PSNR > 0) {
		t.Fatalf("inversions.json %+v", r)
	}

	// A trained encoder is the start from then on.
	errb.Reset()
	if code := run([]string{"invert", "--model", "mnist-gan", "--train-encoder", "--steps", "4", "--batch", "4", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("train encoder: %s", errb.String())
	}
	enc := filepath.Join("work", "mnist-gan", "encoder-z")
	for _, f := range []string{"encoder.json", "encoder.ckpt", "train.ckpt", "train.json", "curves.csv"} {
		if _, err := os.Stat(filepath.Join(enc, f)); err != nil {
			t.Error(err)
		}
	}
	if code := run([]string{"invert", "--model", "mnist-gan", "--image", "in/a.png", "--out", "o2", "--steps", "2"}, &out, &errb); code != 0 {
		t.Fatalf("invert with encoder: %s", errb.String())
	}
	if r := read("o2"); r.Pictures[0].Guess != "encoder" {
		t.Fatalf("start %q, want encoder", r.Pictures[0].Guess)
	}

	// Refusals leave no output.
	os.WriteFile("in/notes.png", []byte("shopping list"), 0o644)
	errb.Reset()
	if code := run([]string{"invert", "--model", "mnist-gan", "--image", "in", "--out", "o3"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "notes.png") {
		t.Errorf("a text file among the pictures: %d %s", code, errb.String())
	}
	os.Remove("in/notes.png")
	w := filepath.Join(enc, "encoder.ckpt")
	raw, _ := os.ReadFile(w)
	raw[len(raw)/2] ^= 1
	os.WriteFile(w, raw, 0o644)
	errb.Reset()
	if code := run([]string{"invert", "--model", "mnist-gan", "--image", "in", "--out", "o4"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "encoder.ckpt") {
		t.Errorf("a spoiled encoder: %d %s", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"pseudocase", "--model", "fundus-gan", "--add", "cup:0.7", "--image", "in/a.png", "--out", "o5", "--invert-steps", "1"}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "a.png") || !strings.Contains(errb.String(), "not a fundus photograph") {
		t.Errorf("pseudocase on a face: %d %s", code, errb.String())
	}
	for _, d := range []string{"o3", "o4", "o5"} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("a refused run left %s (%v)", d, err)
		}
	}
	errb.Reset()
	if code := run([]string{"invert", "--model", "mnist-gan", "--image", "in", "--measure", "2"}, &out, &errb); code != exitUsage {
		t.Errorf("two modes: %d %s", code, errb.String())
	}
}

// TestInvertMeasure: --measure inverts held-out renders and reads them
// with the oracle: the start alone and refined.
func TestInvertMeasure(t *testing.T) {
	if testing.Short() {
		t.Skip("inverts renders through the faces GAN")
	}
	t.Chdir(t.TempDir())
	var out, errb bytes.Buffer
	if code := run([]string{"invert", "--model", "faces-gan", "--measure", "2", "--steps", "5", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("%s", errb.String())
	}
	var r struct {
		Rows []fidelity `json:"rows"`
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil || len(r.Rows) != 2 {
		t.Fatalf("%v %s", err, out.String())
	}
	if r.Rows[1].PSNR < r.Rows[0].PSNR || r.Rows[0].MeanFactor == nil || r.Rows[0].FactorErr["smile"] == 0 {
		t.Errorf("rows %+v", r.Rows)
	}
}
