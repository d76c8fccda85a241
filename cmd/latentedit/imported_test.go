package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestImportedSNResNet64 is issue 19's end-to-end check on a foreign
// generator: GANLatentDiscovery's SNGAN ResNet64 layout, built in Debian's
// PyTorch with seeded random weights (interop/testdata/fixtures.py; narrow
// widths 32,16,16,8,4 so it runs in about a minute on 2 cores, read back
// from the file by the importer), imported, then a short linear discovery
// (20 steps, reports RCA), SeFa, and evaluate's study with a briefly
// trained faces oracle (the generator makes 64×64 RGB images, as faces
// are): every number is there, finite and of the right shape. Slow: skipped
// under -short; scripts/test.sh runs it.
func TestImportedSNResNet64(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (about a minute): imports, discovers and evaluates")
	}
	py := torchPython(t)
	fixtures, err := filepath.Abs("../../interop/testdata/fixtures.py")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	widths := []int{32, 16, 16, 8, 4}
	spec, _ := json.Marshal([]map[string]any{{"name": "g", "arch": "sn_resnet", "seed": 19, "n": 2, "channels": 3, "latent": 128, "widths": widths}})
	if b, err := exec.Command(py, fixtures, ".", string(spec)).CombinedOutput(); err != nil {
		t.Fatalf("fixtures.py: %v\n%s", err, b)
	}
	var out, errb bytes.Buffer
	cli := func(args ...string) []byte {
		t.Helper()
		out.Reset()
		errb.Reset()
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v: code %d: %s", args, code, errb.String())
		}
		return slices.Clone(out.Bytes())
	}

	// No --latent, no widths: 128 is sn_resnet's default, the widths come from the file.
	cli("import", "--from", "g.pt", "--arch", "sn_resnet64", "--dataset", "faces", "--out", "m", "--json")
	var info struct {
		Height, Width, Channels int
		Latent                  int `json:"latent_dim"`
		Config                  struct {
			Arch   string `json:"arch"`
			Widths []int  `json:"widths"`
		} `json:"config"`
	}
	raw, err := os.ReadFile("m/model.json")
	if err == nil {
		err = json.Unmarshal(raw, &info)
	}
	if err != nil || info.Height != 64 || info.Width != 64 || info.Channels != 3 || info.Latent != 128 ||
		info.Config.Arch != "sn_resnet" || !slices.Equal(info.Config.Widths, widths) {
		t.Fatalf("model.json: %+v (%v), want 64×64×3, latent 128, arch sn_resnet, widths %v", info, err, widths)
	}

	var linear struct {
		Editor    string   `json:"editor"`
		RCA       *float64 `json:"rca"`
		Traversal string   `json:"traversal"`
	}
	if err := json.Unmarshal(cli("discover", "--model", "m", "--method", "linear", "--k", "3", "--steps", "20", "--batch", "8", "--json"), &linear); err != nil {
		t.Fatal(err)
	}
	if linear.RCA == nil || !(*linear.RCA >= 0 && *linear.RCA <= 1) {
		t.Fatalf("linear discovery: RCA %v, want a number in [0, 1]", linear.RCA)
	}
	t.Logf("linear discovery, 20 steps of batch 8: RCA %.3f (chance 1/3)", *linear.RCA)
	cli("discover", "--model", "m", "--method", "sefa", "--k", "3", "--json")
	for _, f := range []string{linear.Traversal, "m/editors/sefa/editor.json", "m/editors/sefa/traversal.png"} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}

	var ev struct {
		Report  string `json:"report"`
		Metrics struct {
			Factors []string `json:"factors"`
			Editors []struct {
				Name          string      `json:"name"`
				K             int         `json:"k"`
				RCA           *float64    `json:"rca"`
				Effect        [][]float64 `json:"effect_per_unit_step"`
				Commutativity struct {
					Latent, Image float64
				} `json:"commutativity"`
			} `json:"editors"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal(cli("evaluate", "--model", "m", "--editors", "linear,sefa", "--n", "4", "--comm-n", "2",
		"--quality-n", "16", "--seeds", "3", "--oracle-steps", "15", "--json"), &ev); err != nil {
		t.Fatal(err)
	}
	m := ev.Metrics
	if len(m.Factors) != 10 || len(m.Editors) != 2 {
		t.Fatalf("evaluate: %d factors and %d editors, want the 10 of faces and 2", len(m.Factors), len(m.Editors))
	}
	for _, e := range m.Editors {
		if e.K != 3 || len(e.Effect) != 3 {
			t.Fatalf("%s: k %d, effect matrix of %d rows, want 3", e.Name, e.K, len(e.Effect))
		}
		moved := 0.0
		for k, row := range e.Effect {
			if len(row) != len(m.Factors) {
				t.Fatalf("%s: effect row %d has %d values for %d factors", e.Name, k, len(row), len(m.Factors))
			}
			for f, v := range row {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Errorf("%s: effect of direction %d on %s is %v", e.Name, k, m.Factors[f], v)
				}
				moved = max(moved, math.Abs(v))
			}
		}
		// A linear edit of a random generator still changes its images, so
		// the oracle's readings move.
		if moved == 0 {
			t.Errorf("%s: no direction changed any factor", e.Name)
		}
		c := e.Commutativity
		if math.IsNaN(c.Latent) || math.IsNaN(c.Image) || c.Latent > 1e-5 {
			t.Errorf("%s: commutativity %+v, want finite and ≈ 0 (linear edits commute)", e.Name, c)
		}
		if (e.Name == "linear") != (e.RCA != nil) {
			t.Errorf("%s: RCA %v (a learned editor has one, a fitted one none)", e.Name, e.RCA)
		}
		t.Logf("%s: largest |effect| per unit step %.3g; commutativity latent %.2g, image %.2g", e.Name, moved, c.Latent, c.Image)
	}
	for _, f := range []string{"index.html", "metrics.json", "linear-attributes.png", "sefa-attributes.png", "sefa-traversal.png"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(ev.Report), f)); err != nil {
			t.Error(err)
		}
	}
}
