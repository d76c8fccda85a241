package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"latentedit/edit"
	"latentedit/engine"
)

// TestExportCommand fits a SeFa editor on the embedded MNIST GAN and
// exports it in every format; then checks the refusals, which leave no file.
func TestExportCommand(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	var out, errb bytes.Buffer
	if code := run([]string{"discover", "--model", "mnist-gan", "--method", "sefa", "--k", "3"}, &out, &errb); code != 0 {
		t.Fatalf("discover: %d %s", code, errb.String())
	}
	for _, f := range []string{"safetensors", "pt", "npy"} {
		out.Reset()
		errb.Reset()
		if code := run([]string{"export", "--model", "mnist-gan", "--editor", "sefa", "--format", f, "--out", "sefa." + f}, &out, &errb); code != 0 {
			t.Fatalf("export %s: %d %s", f, code, errb.String())
		}
		if !strings.Contains(out.String(), "exported sefa editor sefa (K 3, latent") {
			t.Errorf("export %s printed %q", f, out.String())
		}
	}
	if _, err := os.Stat("sefa.json"); err != nil {
		t.Errorf("npy sidecar: %v", err)
	}
	// An editor of another latent dimension than the model's.
	be, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	other, err := edit.New("linear", 2, 5, nil, nil, be)
	if err != nil {
		t.Fatal(err)
	}
	if err := edit.Save("other", other, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(".")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--editor", "nosuch", "--out", "x.safetensors"}, 1, `editor "nosuch": not found`},
		{[]string{"--editor", "sefa", "--format", "onnx", "--out", "x.onnx"}, 1, `unknown format "onnx"`},
		{[]string{"--editor", "sefa", "--out", filepath.Join("missing", "x.safetensors")}, 1, "missing does not exist"},
		{[]string{"--editor", "sefa", "--out", "sefa.safetensors"}, 1, "sefa.safetensors already exists"},
		{[]string{"--editor", "other", "--out", "x.safetensors"}, 1, "latent_dim: 5, but the model's latent dimension in z is 64"},
		{[]string{"--editor", "sefa"}, exitUsage, "--model, --editor and --out are required"},
	} {
		errb.Reset()
		args := append([]string{"export", "--model", "mnist-gan"}, tc.args...)
		if code := run(args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: code %d, %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
	if after, _ := os.ReadDir("."); len(after) != len(before) {
		t.Errorf("the refusals left files: %v, before %v", after, before)
	}
}
