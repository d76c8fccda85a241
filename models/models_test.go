package models_test

import (
	"os"
	"path/filepath"
	"testing"

	"latentedit/engine"
	"latentedit/generator"
	"latentedit/models"
)

// TestDefaultModelsLoadAndGenerate loads every shipped model and checks the
// image shape and that the same seed gives the same pixels.
func TestDefaultModelsLoadAndGenerate(t *testing.T) {
	want := map[string][3]int{"faces-gan": {32, 32, 3}, "faces-vae": {32, 32, 3}, "mnist-gan": {28, 28, 1}, "fundus-gan": {64, 64, 3}}
	if got := models.Names(); len(got) != len(want) {
		t.Fatalf("embedded models %v, want %d", got, len(want))
	}
	be, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for name, shape := range want {
		dir, err := models.Extract(name, root)
		if err != nil {
			t.Fatal(err)
		}
		m, err := generator.Load(dir, be)
		if err != nil {
			t.Fatal(err)
		}
		h, w, c := m.ImageShape()
		if [3]int{h, w, c} != shape {
			t.Errorf("%s: shape %dx%dx%d, want %v", name, h, w, c, shape)
		}
		a, err := m.GenerateFloats(flat(generator.Latents(7, 2, m.LatentDim())), 2)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := m.GenerateFloats(flat(generator.Latents(7, 2, m.LatentDim())), 2)
		o, _ := m.GenerateFloats(flat(generator.Latents(8, 2, m.LatentDim())), 2)
		if len(a) != 2*h*w*c || !equal(a, b) {
			t.Errorf("%s: not deterministic per seed", name)
		}
		if equal(a, o) {
			t.Errorf("%s: seeds 7 and 8 give the same images", name)
		}
		// A trained generator does not output a flat image.
		if spread(a[:h*w*c]) < 0.1 {
			t.Errorf("%s: generated image is nearly constant", name)
		}
	}
}

func TestExtractReusesCompleteCopy(t *testing.T) {
	root := t.TempDir()
	d1, err := models.Extract("mnist-gan", root)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d1, "marker"), []byte("x"), 0o644)
	d2, _ := models.Extract("mnist-gan", root)
	if d1 != d2 {
		t.Fatalf("second extract in %s, first in %s", d2, d1)
	}
	if _, err := os.Stat(filepath.Join(d2, "marker")); err != nil {
		t.Fatal("complete copy was rewritten")
	}
	if _, err := models.Extract("nope", root); err == nil {
		t.Fatal("unknown model extracted")
	}
}

func flat(z [][]float32) []float32 {
	var out []float32
	for _, v := range z {
		out = append(out, v...)
	}
	return out
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func spread(v []float32) float32 {
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return hi - lo
}
