package evaluate

import (
	"path/filepath"
	"testing"

	"latentedit/dataset"
	_ "latentedit/dataset/faces"
	"latentedit/engine"
)

// TestOracleLearnsFaces trains a short oracle and checks it reads the big
// factors (R² well above 0) on held-out images, then round-trips it.
func TestOracleLearnsFaces(t *testing.T) {
	be, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	train, _ := dataset.Open("faces", dataset.Options{N: 2000, Seed: 1})
	held, _ := dataset.Open("faces", dataset.Options{N: 300, Seed: 99})
	o, err := TrainOracle(train, held, be, 120, 32, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("held-out R²: %v", o.R2)
	for _, f := range []string{"hair_length", "face_width", "skin_tone"} {
		if o.R2[f] < 0.5 {
			t.Errorf("R²(%s) = %.2f after a short training, want ≥ 0.5", f, o.R2[f])
		}
	}
	dir := filepath.Join(t.TempDir(), "oracle")
	if err := o.Save(dir); err != nil {
		t.Fatal(err)
	}
	o2, err := LoadOracle(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	pix, _, _ := dataset.Batch(held, []int{0, 1})
	a, _ := o.Predict(pix, 2)
	b, _ := o2.Predict(pix, 2)
	if a[1][3] != b[1][3] {
		t.Fatalf("reloaded oracle predicts %v, original %v", b[1], a[1])
	}
}
