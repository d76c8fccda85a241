package evaluate

import (
	"path/filepath"
	"slices"
	"testing"

	"latentedit/edit"
	"latentedit/engine"
	"latentedit/generator"
	"latentedit/models"
)

// TestClassKeptSeesAClassChange: on the shipped MNIST GAN a zero step keeps
// every class, and a long step of the learned "height" direction — which
// the shape oracle scores as a clean edit — turns many digits into others.
func TestClassKeptSeesAClassChange(t *testing.T) {
	be, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := models.Extract("mnist-gan", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := generator.Load(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadClassifier(filepath.Join(dir, ClassifierDir), be)
	if err != nil {
		t.Fatal(err)
	}
	e, err := edit.Load(filepath.Join(dir, "editors", "linear"), edit.SpaceZ, m.LatentDim(), be)
	if err != nil {
		t.Fatal(err)
	}
	k := slices.Index(e.Names(), "height")
	if k < 0 {
		t.Fatalf("the shipped linear editor has no height direction: %v", e.Names())
	}
	zs := m.Latents(1, 24)
	before, err := Classes(m, c, zs)
	if err != nil {
		t.Fatal(err)
	}
	if kept, err := ClassKept(m, e, c, zs, before, k, 0); err != nil || kept != 1 {
		t.Fatalf("a zero step keeps %v of the classes (%v), want all", kept, err)
	}
	kept, err := ClassKept(m, e, c, zs, before, k, 6)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("height step 6 keeps %.2f of the classes", kept)
	if !(kept < 0.8) {
		t.Errorf("a step of 6 along height keeps %.2f of the classes; the study measured 0.28", kept)
	}
	if _, err := ClassKept(m, e, c, zs, before[:3], k, 1); err == nil {
		t.Error("3 classes for 24 latents: no error")
	}
}
