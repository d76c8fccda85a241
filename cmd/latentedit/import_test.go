package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// writeSafetensors writes tensors of the given PyTorch shapes with small
// seeded values as a .safetensors file.
func writeSafetensors(t *testing.T, path string, shapes map[string][]int) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	names := make([]string, 0, len(shapes))
	for n := range shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	header := map[string]any{}
	var data []byte
	for _, n := range names {
		size := 1
		for _, d := range shapes[n] {
			size *= d
		}
		header[n] = map[string]any{"dtype": "F32", "shape": shapes[n], "data_offsets": []int{len(data), len(data) + 4*size}}
		for range size {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(r.NormFloat64()*0.2)))
		}
	}
	h, _ := json.Marshal(header)
	raw := append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...)
	if err := os.WriteFile(path, append(raw, data...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestImportCommand imports a dcgan state dict (28×28×1, base 4, latent 3:
// a 7×7×16 seed and two blocks), then samples it and fits SeFa on it as on
// any other model; a bad import exits 1 and leaves no directory.
func TestImportCommand(t *testing.T) {
	t.Chdir(t.TempDir())
	writeSafetensors(t, "g.safetensors", map[string][]int{
		"dense.weight": {784, 3}, "dense.bias": {784},
		"up.0.weight": {8, 16, 3, 3}, "up.0.bias": {8},
		"up.1.weight": {4, 8, 3, 3}, "up.1.bias": {4},
		"to_image.weight": {1, 4, 3, 3}, "to_image.bias": {1},
	})
	var out, errb bytes.Buffer
	if code := run([]string{"import", "--from", "g.safetensors", "--arch", "dcgan", "--out", "m", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("import: code %d: %s", code, errb.String())
	}
	var res struct {
		Size, Channels int
		Latent         int    `json:"latent_dim"`
		SHA            string `json:"source_sha256"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Size != 28 || res.Channels != 1 || res.Latent != 3 || len(res.SHA) != 64 {
		t.Fatalf("import result %q: %v", out.String(), err)
	}
	for _, args := range [][]string{
		{"sample", "--model", "m", "--n", "2", "--out", "s"},
		{"discover", "--model", "m", "--method", "sefa", "--k", "2"},
	} {
		out.Reset()
		errb.Reset()
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v on the imported model: code %d: %s", args, code, errb.String())
		}
	}
	errb.Reset()
	if code := run([]string{"import", "--from", "g.safetensors", "--arch", "sn_resnet32", "--out", "bad"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "missing keys 0.weight") {
		t.Errorf("wrong arch: code %d, stderr %q", code, errb.String())
	}
	if _, err := os.Stat("bad"); !os.IsNotExist(err) {
		t.Errorf("a refused import left %s: %v", "bad", err)
	}
	if left, _ := filepath.Glob(".bad*"); len(left) != 0 {
		t.Errorf("a refused import left %v", left)
	}
	if code := run([]string{"import", "--from", "g.safetensors"}, &out, &errb); code != exitUsage {
		t.Errorf("no --arch: code %d, want %d", code, exitUsage)
	}
}

// TestImportStyleCommand imports a style state dict (16×16×1, base 4,
// latent 3, one mapping layer, no noise) with --truncation: model.json
// records the arch and its settings, and sample runs on it.
func TestImportStyleCommand(t *testing.T) {
	t.Chdir(t.TempDir())
	shapes := map[string][]int{"mapping.0.weight": {3, 3}, "mapping.0.bias": {3}, "w_avg": {3}, "const": {1, 16, 4, 4}}
	for i, w := range [][2]int{{16, 16}, {16, 8}, {8, 4}} { // block i: input and output width
		b := fmt.Sprintf("blocks.%d.", i)
		shapes[b+"conv.weight"], shapes[b+"conv.bias"] = []int{w[1], w[0], 3, 3}, []int{w[1]}
		shapes[b+"conv.affine.weight"], shapes[b+"conv.affine.bias"] = []int{w[0], 3}, []int{w[0]}
		shapes[b+"to_rgb.weight"] = []int{1, w[1], 1, 1}
		shapes[b+"to_rgb.affine.weight"], shapes[b+"to_rgb.affine.bias"] = []int{w[1], 3}, []int{w[1]}
	}
	writeSafetensors(t, "g.safetensors", shapes)
	var out, errb bytes.Buffer
	if code := run([]string{"import", "--from", "g.safetensors", "--arch", "style", "--truncation", "0.7", "--out", "m"}, &out, &errb); code != 0 {
		t.Fatalf("import: code %d: %s", code, errb.String())
	}
	raw, err := os.ReadFile(filepath.Join("m", "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Config struct {
			Arch       string  `json:"arch"`
			MapDepth   int     `json:"map_depth"`
			Noise      bool    `json:"noise"`
			Truncation float64 `json:"truncation"`
			Base       int     `json:"base"`
			Size       int     `json:"size"`
		} `json:"config"`
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		t.Fatal(err)
	}
	if c := info.Config; c.Arch != "style" || c.MapDepth != 1 || c.Noise || c.Truncation != 0.7 || c.Base != 4 || c.Size != 16 {
		t.Fatalf("model.json config %+v: want style, map depth 1, no noise, truncation 0.7, base 4, size 16", c)
	}
	if code := run([]string{"sample", "--model", "m", "--n", "2", "--out", "s"}, &out, &errb); code != 0 {
		t.Fatalf("sample on the imported style model: code %d: %s", code, errb.String())
	}
}
