package evaluate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"latentedit/dataset"
	_ "latentedit/dataset/mnist"
	"latentedit/engine"
	"latentedit/train/killtest"
)

// TestClassifierLearnsMNIST trains a short classifier on 3000 MNIST digits,
// checks its test accuracy is far above chance, round-trips it and spoils
// its files one at a time.
func TestClassifierLearnsMNIST(t *testing.T) {
	be, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	trainSet, err := dataset.Open("mnist", dataset.Options{N: 3000})
	if err != nil {
		t.Skipf("no MNIST: %v", err)
	}
	test, err := dataset.Open("mnist", dataset.Options{N: 500, Split: "test"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := TrainClassifier(trainSet, test, be, ClassifierOptions{Steps: 150, Batch: 32})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("test accuracy after 150 steps: %.3f", c.TestAccuracy)
	if c.Classes != 10 || c.TestN != 500 || c.TestAccuracy < 0.7 {
		t.Fatalf("classes %d, test n %d, accuracy %.3f; want 10, 500, ≥ 0.7", c.Classes, c.TestN, c.TestAccuracy)
	}
	dir := filepath.Join(t.TempDir(), ClassifierDir)
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	c2, err := LoadClassifier(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	pix, _, _ := dataset.Batch(test, []int{0, 1, 2})
	fa, ca, _ := c.Read(pix, 3)
	fb, cb, err := c2.Read(pix, 3)
	if err != nil || fa[2][4] != fb[2][4] || ca[1][0] != cb[1][0] || len(fa[0]) != 10 {
		t.Fatalf("reloaded classifier reads %v %v, original %v %v (%v)", fb[2], cb, fa[2], ca, err)
	}
	// Each spoiled file is refused, naming the file and the field.
	spec := filepath.Join(dir, ClassifierSpec)
	good, _ := os.ReadFile(spec)
	for _, c := range []struct{ from, to, want string }{
		{`"format_version": 1`, `"format_version": 9`, "format_version"},
		{`"kind": "classifier"`, `"kind": "oracle"`, "kind"},
		{`"classes": 10`, `"classes": 1`, "classes"},
		{`"weights_sha256": "`, `"weights_sha256": "0`, "weights_sha256"},
	} {
		os.WriteFile(spec, []byte(strings.Replace(string(good), c.from, c.to, 1)), 0o644)
		if _, err := LoadClassifier(dir, be); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s → %s: %v, want a refusal naming %s", c.from, c.to, err, c.want)
		}
	}
	os.WriteFile(spec, good, 0o644)
	ckpt := filepath.Join(dir, classifierWeights)
	w, _ := os.ReadFile(ckpt)
	os.WriteFile(ckpt, w[:len(w)/2], 0o644)
	if _, err := LoadClassifier(dir, be); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("truncated weights: %v", err)
	}
	faces, _ := dataset.Open("faces", dataset.Options{N: 10, Seed: 1})
	if _, err := TrainClassifier(faces, faces, be, ClassifierOptions{Steps: 1}); err == nil || !strings.Contains(err.Error(), "label") {
		t.Errorf("faces (no class label) accepted: %v", err)
	}
}

// killClassifier is the run TestClassifierKillAndResume kills.
func killClassifier(dir string, resume bool) error {
	be, err := engine.NewBackend("")
	if err != nil {
		return err
	}
	trainSet, err := dataset.Open("mnist", dataset.Options{N: 200})
	if err != nil {
		return err
	}
	test, err := dataset.Open("mnist", dataset.Options{N: 20, Split: "test"})
	if err != nil {
		return err
	}
	_, err = TrainClassifier(trainSet, test, be, ClassifierOptions{Steps: 40, Batch: 8, Dir: dir, Resume: resume})
	return err
}

// TestClassifierKillAndResume: SIGKILL after a checkpoint, resume, and the
// classifier's weights and Adam state are the uninterrupted run's, bit for bit.
func TestClassifierKillAndResume(t *testing.T) {
	if _, err := dataset.Open("mnist", dataset.Options{N: 1}); err != nil {
		t.Skipf("no MNIST: %v", err)
	}
	killtest.Run(t, 40, t.TempDir(), t.TempDir(), ClassifierStateFile, killClassifier)
}
