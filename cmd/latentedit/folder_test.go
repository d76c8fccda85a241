package main

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"latentedit/engine"
	"latentedit/generator"
)

// writeImage writes img as PNG or JPEG (by the name's extension), making
// the folders on the way.
func writeImage(t *testing.T, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var err error
	if strings.HasSuffix(path, ".jpg") {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	} else {
		err = png.Encode(&buf, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTrainOnAFolder: `train --data folder --data-dir` trains 30 steps on a
// folder of mixed-size PNG and JPEG files (RGB, greyscale, transparent RGBA,
// in a sub-folder too), records the folder in model.json, and gives a model
// that loads and draws; an empty folder and misused flags are refused.
func TestTrainOnAFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pictures")
	for i := 0; i < 12; i++ {
		w, h := 20+3*i, 40-2*i
		var img image.Image
		switch i % 3 {
		case 0:
			rgb := image.NewRGBA(image.Rect(0, 0, w, h))
			for p := range rgb.Pix {
				rgb.Pix[p] = uint8(i*20 + p%7)
			}
			img = rgb
		case 1:
			g := image.NewGray(image.Rect(0, 0, w, h))
			for p := range g.Pix {
				g.Pix[p] = uint8(255 - 10*i)
			}
			img = g
		default:
			a := image.NewNRGBA(image.Rect(0, 0, w, h))
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					a.SetNRGBA(x, y, color.NRGBA{200, uint8(10 * i), 50, uint8(255 * (x % 2))})
				}
			}
			img = a
		}
		name := []string{"a%02d.png", "b%02d.jpg", "sub/c%02d.png"}[i%3]
		writeImage(t, filepath.Join(dir, strings.Replace(name, "%02d", string(rune('a'+i)), 1)), img)
	}
	out := filepath.Join(t.TempDir(), "model")
	var stdout, stderr bytes.Buffer
	code := run([]string{"train", "--data", "folder", "--data-dir", dir, "--size", "16", "--steps", "30", "--batch", "4",
		"--base", "8", "--latent", "8", "--sample-every", "30", "--checkpoint-every", "10", "--out", out, "--json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("train: code %d: %s", code, stderr.String())
	}
	info, err := generator.ReadInfo(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Dataset != "folder" || info.Config.DataDir != dir || info.Config.DataN != 12 || info.Height != 16 || info.Channels != 3 || info.Step != 30 {
		t.Fatalf("model.json: dataset %q dir %q n %d size %d channels %d step %d", info.Config.Dataset, info.Config.DataDir,
			info.Config.DataN, info.Height, info.Channels, info.Step)
	}
	if !strings.Contains(stderr.String(), `"total":12`) {
		t.Errorf("the image count is not reported: %s", stderr.String())
	}
	be, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	m, err := generator.Load(out, be)
	if err != nil {
		t.Fatal(err)
	}
	pix, err := m.GenerateFloats(make([]float32, 8), 1)
	if err != nil || len(pix) != 16*16*3 {
		t.Fatalf("generate: %d values, %v", len(pix), err)
	}
	// The closed-form fits need only G; InterFaceGAN needs labels the folder lacks.
	stderr.Reset()
	if code := run([]string{"discover", "--model", out, "--method", "ganspace", "--k", "3"}, &stdout, &stderr); code != 0 {
		t.Fatalf("ganspace on a folder model: code %d: %s", code, stderr.String())
	}

	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "notes.txt"), []byte("no images"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"train", "--data", "folder", "--data-dir", empty, "--out", filepath.Join(t.TempDir(), "m")}, 1, "holds no PNG or JPEG"},
		{[]string{"evaluate", "--model", out, "--quality", "--study=false", "--quality-n", "8"}, 1, "has no factors, so no oracle"},
		{[]string{"discover", "--model", out, "--method", "interfacegan", "--k", "3"}, 1, "no factors to learn"},
		{[]string{"train", "--data", "folder", "--out", filepath.Join(t.TempDir(), "m")}, exitUsage, "needs --data-dir"},
		{[]string{"train", "--data", "faces", "--data-dir", dir, "--out", filepath.Join(t.TempDir(), "m")}, exitUsage, "--data-dir is for --data folder"},
	} {
		stderr.Reset()
		if code := run(c.args, &stdout, &stderr); code != c.code || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: code %d (want %d), stderr %q (want %q)", c.args, code, c.code, stderr.String(), c.want)
		}
	}
}
