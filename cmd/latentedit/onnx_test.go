package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// torchPython is a python3 that imports torch, /usr/bin first (Debian's
// python3-torch, which scripts/test.sh installs); the test fails without one.
func torchPython(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import torch").Run() == nil {
			return p
		}
	}
	t.Fatal("no python3 with torch: install Debian's python3-torch (scripts/test.sh does)")
	return ""
}

// onnxGenerator exports a small seeded 32×32×3 generator (latent 8, tanh)
// with Debian's PyTorch through interop's test fixtures and returns the
// .onnx file's path.
func onnxGenerator(t *testing.T) string {
	t.Helper()
	script, err := filepath.Abs("../../interop/testdata/fixtures.py")
	if err != nil {
		t.Fatal(err)
	}
	py := torchPython(t)
	dir := t.TempDir()
	spec := `[{"name": "g", "arch": "onnx", "seed": 21, "n": 1, "channels": 3, "latent": 8, "widths": [16, 8, 8], "final": "tanh", "export_batch": 2, "dynamic": true}]`
	cmd := exec.Command(py, script, dir, spec)
	cmd.Dir = filepath.Dir(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fixtures.py: %v\n%s", err, out)
	}
	return filepath.Join(dir, "g.onnx")
}

// TestImportONNXCommand imports a 32×32 ONNX generator as a faces model,
// samples it, fits GANSpace (mode=latent) and InterFaceGAN (on a short
// oracle of its own), edits with GANSpace and evaluates it with the faces
// oracle; the methods that need gradients through the graph
// are refused with the reason, and a refused import leaves nothing.
func TestImportONNXCommand(t *testing.T) {
	src := onnxGenerator(t)
	t.Chdir(t.TempDir())
	var out, errb bytes.Buffer
	if code := run([]string{"import", "--from", src, "--arch", "onnx", "--dataset", "faces", "--out", "m", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("import: code %d: %s", code, errb.String())
	}
	var res struct {
		Size, Channels int
		Latent         int `json:"latent_dim"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Size != 32 || res.Channels != 3 || res.Latent != 8 {
		t.Fatalf("import result %q: %v", out.String(), err)
	}
	for _, args := range [][]string{
		{"sample", "--model", "m", "--n", "3", "--out", "s"},
		{"discover", "--model", "m", "--method", "ganspace", "--opt", "mode=latent", "--k", "2", "--samples", "200"},
		{"discover", "--model", "m", "--method", "interfacegan", "--opt", "factors=smile+bangs", "--samples", "60", "--oracle-steps", "15"},
		{"edit", "--model", "m", "--editor", "ganspace", "--seeds", "1,2", "--seq", "0:2,1:-1.5", "--out", "edit.png"},
		{"evaluate", "--model", "m", "--editors", "ganspace", "--oracle", "faces-gan", "--n", "4", "--comm-n", "2",
			"--quality-n", "16", "--seeds", "3", "--json"},
	} {
		out.Reset()
		errb.Reset()
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v on the imported onnx model: code %d: %s", args, code, errb.String())
		}
	}
	if !strings.Contains(out.String(), `"metrics"`) {
		t.Errorf("evaluate printed no metrics: %.300s", out.String())
	} else if testing.Verbose() {
		t.Logf("evaluate: %.600s", out.String())
	}
	for _, f := range []string{"s", "edit.png", "m/editors/ganspace/editor.json", "m/editors/interfacegan/editor.json"} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"discover", "--model", "m", "--method", "linear", "--k", "2", "--steps", "2"}, "stock conv gradient"},
		{[]string{"discover", "--model", "m", "--method", "sefa", "--k", "2"}, "no first layer"},
		{[]string{"import", "--from", src, "--arch", "onnx", "--range", "1,0", "--out", "bad"}, "LO must be below HI"},
		{[]string{"import", "--from", src, "--arch", "dcgan", "--range", "0,1", "--out", "bad"}, "ends in tanh"},
	} {
		errb.Reset()
		if code := run(c.args, &out, &errb); code == 0 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: code %d, stderr %q; want a refusal saying %q", c.args, code, errb.String(), c.want)
		}
	}
	if left, _ := filepath.Glob("*bad*"); len(left) != 0 {
		t.Errorf("a refused import left %v", left)
	}
	if left, _ := filepath.Glob(".bad*"); len(left) != 0 {
		t.Errorf("a refused import left %v", left)
	}
}
