package main

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"latentedit/edit"
	"latentedit/server"
	"latentedit/workspace"
)

// TestSpacesEndToEnd trains a tiny style GAN, then discovers, fits, edits,
// evaluates and serves-lists editors in w and w+ beside z.
func TestSpacesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a style GAN and several editors (about a minute)")
	}
	root, err := filepath.Abs("../..") // the repository, before leaving the package folder
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	t.Chdir(work)
	var out, errb bytes.Buffer
	must := func(args ...string) {
		t.Helper()
		out.Reset()
		errb.Reset()
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v: code %d: %s", args, code, errb.String())
		}
	}
	must("train", "--arch", "style", "--data", "faces", "--size", "32", "--data-n", "64", "--base", "8", "--latent", "16",
		"--batch", "8", "--steps", "4", "--map-depth", "2", "--out", "sg")
	must("discover", "--model", "sg", "--space", "w", "--method", "ganspace", "--k", "4", "--samples", "200", "--name", "gs-w")
	must("discover", "--model", "sg", "--space", "w+", "--method", "sefa", "--k", "4", "--name", "sefa-wp")
	must("discover", "--model", "sg", "--space", "w", "--method", "linear", "--k", "2", "--steps", "3", "--batch", "4", "--name", "lin-w")
	must("discover", "--model", "sg", "--method", "sefa", "--k", "4", "--name", "sefa-z")
	spec := func(name string) edit.Spec {
		s, err := edit.ReadSpec(filepath.Join("sg", "editors", name))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	styles := 4 // 32 px from a 4×4 constant: three upsampling blocks
	for name, want := range map[string][2]any{"gs-w": {"w", 16}, "sefa-wp": {"w+", 16 * styles}, "lin-w": {"w", 16}, "sefa-z": {"z", 16}} {
		s := spec(name)
		if s.Space != want[0] || s.LatentDim != want[1] {
			t.Errorf("%s: space %q latent_dim %d, want %v %v", name, s.Space, s.LatentDim, want[0], want[1])
		}
	}
	raw, _ := os.ReadFile(filepath.Join("sg", "editors", "sefa-z", edit.SpecFile))
	if strings.Contains(string(raw), `"space"`) {
		t.Error("a z editor's editor.json names its space (files before spaces had none: z stays implicit)")
	}
	must("edit", "--model", "sg", "--editor", "sefa-wp", "--seeds", "1,2", "--seq", "0:2,1:-1", "--out", "e.png")
	if _, err := os.Stat("e.png"); err != nil {
		t.Fatal(err)
	}
	// Resuming a w run in z is refused, naming the space.
	errb.Reset()
	if code := run([]string{"discover", "--model", "sg", "--method", "linear", "--k", "2", "--steps", "4", "--batch", "4", "--name", "lin-w", "--resume"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "trains in w") {
		t.Errorf("resume of a w run in z: code %d, %s", code, errb.String())
	}
	// evaluate measures every editor in its own space.
	must("evaluate", "--model", "sg", "--editors", "gs-w,sefa-wp,sefa-z", "--oracle", "faces-gan", "--n", "4", "--comm-n", "2",
		"--quality-n", "16", "--seeds", "3", "--json")
	var res struct {
		Editors []struct {
			Name  string `json:"name"`
			Space string `json:"space"`
		} `json:"editors"`
	}
	mpath := filepath.Join("sg", "reports", "metrics.json")
	raw, err = os.ReadFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &res); err != nil || len(res.Editors) != 3 {
		t.Fatalf("metrics.json: %v, %d editors", err, len(res.Editors))
	}
	for _, e := range res.Editors {
		if want := map[string]string{"gs-w": "w", "sefa-wp": "w+", "sefa-z": "z"}[e.Name]; e.Space != want {
			t.Errorf("metrics.json: %s in space %q, want %q", e.Name, e.Space, want)
		}
	}
	// export carries the w+ code frame; PyTorch's reference maps w to codes
	// and back, and the code of seed 4's w is latentedit's lift of seed 4.
	must("export", "--model", "sg", "--editor", "sefa-wp", "--format", "safetensors", "--out", "wp.safetensors")
	sgw, err := workspace.Open("sg", "")
	if err != nil {
		t.Fatal(err)
	}
	view, err := sgw.Model.InSpace("w+")
	if err != nil {
		t.Fatal(err)
	}
	wflat, err := view.Root().MapFloats(sgw.Model.Latent(4), 1) // no truncation in this model
	if err != nil {
		t.Fatal(err)
	}
	code := view.Latent(4)
	script := `
import json, sys, torch
sys.path.insert(0, sys.argv[1])
from latentedit_edit import load_editor
e = load_editor("wp.safetensors")
a = json.load(sys.stdin)
w = torch.tensor(a["w"], dtype=torch.float64).reshape(1, -1)
wp = w.unsqueeze(1).expand(1, e.code_styles, w.shape[1])
c = e.to_code(wp)
back = e.from_code(c)
print(json.dumps({"space": e.space, "code": c[0].tolist(), "roundtrip": float((back - wp).abs().max())}))
`
	in, _ := json.Marshal(map[string]any{"w": wflat})
	py := exec.Command("/usr/bin/python3", "-c", script, filepath.Join(root, "interop", "torch"))
	py.Stdin = bytes.NewReader(in)
	pyOut, err := py.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var got struct {
		Space     string    `json:"space"`
		Code      []float64 `json:"code"`
		Roundtrip float64   `json:"roundtrip"`
	}
	if err := json.Unmarshal(pyOut, &got); err != nil || got.Space != "w+" || len(got.Code) != len(code) || got.Roundtrip > 1e-6 {
		t.Fatalf("PyTorch side: %v %s", err, pyOut)
	}
	for i, v := range code {
		if math.Abs(got.Code[i]-float64(v)) > 1e-4 {
			t.Fatalf("code value %d: PyTorch's to_code %g, latentedit's lift %g", i, got.Code[i], v)
		}
	}
	// serve --space w serves the w editors and names the others skipped.
	ws, err := workspace.Open("sg", "")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(ws, server.Config{Space: "w"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/api/info", nil))
	var info struct {
		LatentDim int `json:"latent_dim"`
		Editors   []struct {
			Name string `json:"name"`
		} `json:"editors"`
		Skipped []string `json:"skipped"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &info); err != nil {
		t.Fatalf("/api/info: %v: %s", err, rec.Body.String())
	}
	var served []string
	for _, e := range info.Editors {
		served = append(served, e.Name)
	}
	if strings.Join(served, ",") != "gs-w,lin-w" || len(info.Skipped) != 2 || !strings.Contains(strings.Join(info.Skipped, ";"), "serve --space w+") {
		t.Errorf("serve --space w: editors %v, skipped %q", served, info.Skipped)
	}
	// A w editor on a generator without a mapping network is refused,
	// naming editor.json's space.
	must("train", "--data", "faces", "--size", "32", "--data-n", "64", "--base", "8", "--latent", "16", "--batch", "8", "--steps", "2", "--out", "dc")
	if err := os.CopyFS(filepath.Join("dc", "editors", "gs-w"), os.DirFS(filepath.Join("sg", "editors", "gs-w"))); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run([]string{"edit", "--model", "dc", "--editor", "gs-w", "--seq", "0:1", "--out", "x.png"}, &out, &errb); code == 0 ||
		!strings.Contains(errb.String(), `field space "w"`) || !strings.Contains(errb.String(), "no mapping network") {
		t.Errorf("w editor on a dcgan: code %d, %s", code, errb.String())
	}
}
