package evaluate

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"latentedit/edit"
	"latentedit/engine"
	"latentedit/generator"
	"latentedit/models"
)

// TestFitInterFaceGAN fits boundaries on the shipped faces GAN with its
// oracle's labels: the directions are named after the chosen factors (and
// the conditional one), moving along the yaw direction raises the oracle's
// yaw, and mistakes in the options are refused by name.
func TestFitInterFaceGAN(t *testing.T) {
	be, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := models.Extract("faces-gan", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := generator.Load(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	o, err := LoadOracle(filepath.Join(dir, "oracle"), be)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	fit := edit.InterFaceGANFitOptions{Factors: "yaw+pitch", Condition: "yaw:pitch", Solver: "logistic"}
	e, err := FitInterFaceGAN(m, o, 300, 11, fit, func(done, total int) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if names := e.Names(); !slices.Contains(names, "yaw") || !slices.Contains(names, "pitch") || !slices.Contains(names, "yaw|pitch") {
		t.Fatalf("directions %q", names)
	}
	if calls == 0 {
		t.Error("no progress reported")
	}
	k, _ := edit.Direction(e, "yaw")
	f := slices.Index(o.Factors, "yaw")
	zs := generator.Latents(99, 16, m.LatentDim())
	moved, err := e.EditBatch(zs, edit.Repeat(edit.Step{K: k, T: 2}, len(zs)))
	if err != nil {
		t.Fatal(err)
	}
	before, err := ReadFactors(m, o, zs)
	if err != nil {
		t.Fatal(err)
	}
	after, err := ReadFactors(m, o, moved)
	if err != nil {
		t.Fatal(err)
	}
	var mean float64
	for i := range zs {
		mean += FactorDiff("yaw", after[i][f], before[i][f]) / float64(len(zs))
	}
	if !(mean > 0) {
		t.Errorf("a step of 2 along the fitted yaw direction changed the oracle's yaw by %g", mean)
	}
	for _, tc := range []struct {
		fit  edit.InterFaceGANFitOptions
		want string
	}{
		{edit.InterFaceGANFitOptions{Factors: "nosuch"}, `"nosuch"`},
		{edit.InterFaceGANFitOptions{Condition: "yaw"}, "condition"},
		{edit.InterFaceGANFitOptions{Ratio: 0.9}, "ratio"},
	} {
		if _, err := FitInterFaceGAN(m, o, 30, 1, tc.fit, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error containing %q", tc.fit, err, tc.want)
		}
	}
}
