package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"latentedit/generator"
	"latentedit/models"
	"latentedit/workspace"
)

// TestPriorCommand fits a small prior into a copy of the faces VAE, then
// checks that `sample` draws its seeds through it.
func TestPriorCommand(t *testing.T) {
	sub, err := models.FS("faces-vae")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "vae")
	if err := os.CopyFS(dir, sub); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"prior", "--model", dir, "--components", "3", "--images", "120", "--iters", "5", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("code %d: %s", code, errb.String())
	}
	var res priorResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Components != 3 || res.Images != 120 || res.Iterations < 1 || len(res.Curve) != res.Iterations {
		t.Fatalf("result %q: %v", out.String(), err)
	}
	if !strings.Contains(errb.String(), `"task":"prior em"`) {
		t.Errorf("no JSON progress of the EM stage on stderr: %q", errb.String())
	}
	info, err := generator.ReadInfo(dir)
	if err != nil || info.Prior == nil || info.Prior.Components != 3 || !strings.Contains(info.Prior.Command, "--components 3") {
		t.Fatalf("model.json's prior: %+v, %v", info.Prior, err)
	}
	samples := t.TempDir()
	if code := run([]string{"sample", "--model", dir, "--n", "2", "--seed", "5", "--out", samples}, &out, &errb); code != 0 {
		t.Fatalf("sample: code %d: %s", code, errb.String())
	}
	f, err := os.Open(filepath.Join(samples, "latents.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != 3 {
		t.Fatalf("latents.csv: %d rows, %v", len(rows), err)
	}
	ws, err := workspace.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, len(rows[1])-2)
	for j := range got {
		v, _ := strconv.ParseFloat(rows[1][2+j], 32)
		got[j] = float32(v)
	}
	if !slices.Equal(got, ws.Model.Latent(5)) || slices.Equal(got, generator.Latent(5, len(got))) {
		t.Error("sample's seed 5 is not the prior's draw")
	}
}

func TestPriorRefusals(t *testing.T) {
	gan := t.TempDir()
	sub, _ := models.FS("mnist-gan")
	if err := os.CopyFS(filepath.Join(gan, "m"), sub); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", "faces-vae"}, "embedded model"},
		{[]string{"--model", filepath.Join(gan, "m"), "--components", "2", "--images", "20"}, "a gan; a fitted prior needs an encoder"},
		{[]string{"--model", "x", "--components", "0"}, "--components 0"},
		{[]string{"--model", "x", "--components", "8", "--images", "10"}, "two images per component"},
		{[]string{"--model", "x", "--reg", "NaN"}, "--reg NaN"},
		{[]string{}, "--model is required"},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"prior"}, c.args...), &out, &errb); code == 0 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("prior %v: code %d, stderr %q; want an error containing %q", c.args, code, errb.String(), c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(gan, "m", generator.PriorFile)); err == nil {
		t.Error("a refused prior left a prior file in the GAN's directory")
	}
}
