package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"latentedit/generator"
	"latentedit/server"
	"latentedit/workspace"
)

func TestUsageAndUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "train") {
		t.Fatalf("no args: code %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"frobnicate"}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Fatalf("unknown: code %d, stderr %q", code, errb.String())
	}
}

func TestDataWritesFiles(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run([]string{"data", "faces", "--n", "5", "--out", dir, "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("code %d: %s", code, errb.String())
	}
	for _, f := range []string{"labels.csv", "contact.png", "images/000004.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "labels.csv"))
	if lines := strings.Count(string(b), "\n"); lines != 6 || !strings.Contains(string(b), "smile") {
		t.Errorf("labels.csv has %d lines: %q", lines, b)
	}
}

func TestBadFlagsAndDataset(t *testing.T) {
	cases := [][]string{
		{"train", "--steps", "x", "--out", "d"},
		{"train"}, // --out missing
		{"data", "faces"},
	}
	for _, args := range cases {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitUsage {
			t.Errorf("%v: code %d, want %d (%s)", args, code, exitUsage, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"data", "nosuch", "--out", t.TempDir()}, &out, &errb); code != 1 || !strings.Contains(errb.String(), `unknown dataset "nosuch"`) {
		t.Errorf("unknown dataset: code %d, %s", code, errb.String())
	}
}

// TestDiscoverAndEditCommands fits a SeFa editor on the embedded MNIST GAN,
// edits two seeds with it, and edits an uploaded image through the faces
// VAE's encoder; then checks the errors of bad requests.
func TestDiscoverAndEditCommands(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	var out, errb bytes.Buffer
	if code := run([]string{"discover", "--model", "mnist-gan", "--method", "sefa", "--k", "4", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("discover: %d %s", code, errb.String())
	}
	for _, f := range []string{"work/mnist-gan/editors/sefa/editor.json", "work/mnist-gan/editors/sefa/traversal.png"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
	}
	if code := run([]string{"edit", "--model", "mnist-gan", "--editor", "sefa", "--seeds", "1,2", "--seq", "0:2,sefa 1:-1.5", "--out", "e.png"}, &out, &errb); code != 0 {
		t.Fatalf("edit: %d %s", code, errb.String())
	}
	if _, err := os.Stat("e.png"); err != nil {
		t.Fatal(err)
	}
	// Real-image editing: the GAN inverts the picture (seeded starts and a
	// few refinement steps: it has no encoder), the VAE encodes it; a file
	// that is not a picture is refused by name, and nothing is written.
	img := filepath.Join(work, "in.png")
	if code := run([]string{"data", "faces", "--n", "1", "--out", "face"}, &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	os.Rename("face/images/000000.png", img)
	errb.Reset()
	if code := run([]string{"edit", "--model", "mnist-gan", "--editor", "sefa", "--image", img, "--invert-steps", "3", "--seq", "0:1", "--out", "g.png"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "PSNR") {
		t.Fatalf("GAN + --image: %d %s", code, errb.String())
	}
	if _, err := os.Stat("g.png"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile("notes.png", []byte("not a picture"), 0o644)
	errb.Reset()
	if code := run([]string{"edit", "--model", "mnist-gan", "--editor", "sefa", "--image", "notes.png", "--seq", "0:1", "--out", "bad.png"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "notes.png") || !strings.Contains(errb.String(), "not a PNG or JPEG") {
		t.Fatalf("GAN + --image of a text file: %d %s", code, errb.String())
	}
	if _, err := os.Stat("bad.png"); !os.IsNotExist(err) {
		t.Fatalf("a refused --image left %v", err)
	}
	if code := run([]string{"discover", "--model", "faces-vae", "--method", "sefa", "--k", "3"}, &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	if code := run([]string{"edit", "--model", "faces-vae", "--editor", "sefa", "--image", img, "--seq", "0:2", "--out", "v.png"}, &out, &errb); code != 0 {
		t.Fatalf("VAE + --image: %d %s", code, errb.String())
	}
	// evaluate trains a (short) oracle, measures the editor and names it.
	out.Reset()
	if code := run([]string{"evaluate", "--model", "faces-vae", "--editors", "sefa", "--n", "4", "--comm-n", "2", "--quality-n", "16",
		"--seeds", "3", "--oracle-steps", "15", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("evaluate: %d %s", code, errb.String())
	}
	var res struct {
		Report  string `json:"report"`
		Metrics struct {
			Editors []struct {
				Name          string      `json:"name"`
				Names         []string    `json:"names"`
				Effect        [][]float64 `json:"effect_per_unit_step"`
				Commutativity struct {
					Latent float64 `json:"latent"`
					Image  float64 `json:"image"`
				} `json:"commutativity"`
			} `json:"editors"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("evaluate --json: %v: %s", err, out.String())
	}
	eds := res.Metrics.Editors
	if len(eds) != 1 || eds[0].Name != "sefa" || len(eds[0].Names) != 3 || len(eds[0].Effect) != 3 || len(eds[0].Effect[0]) != 10 ||
		eds[0].Commutativity.Latent > 1e-6 || eds[0].Commutativity.Image > 1e-4 {
		t.Fatalf("metrics %+v", res.Metrics)
	}
	for _, f := range []string{"index.html", "metrics.json", "commutativity.png", "sequence-seed3.png", "sefa-attributes.png", "sefa-traversal.png"} {
		if _, err := os.Stat(filepath.Join("work/faces-vae/reports", f)); err != nil {
			t.Error(err)
		}
	}
	if page, err := os.ReadFile(res.Report); err != nil || !strings.Contains(string(page), "sefa-attributes.png") {
		t.Errorf("report page %s: %v", res.Report, err)
	}
	for _, bad := range [][]string{
		{"edit", "--model", "mnist-gan", "--editor", "sefa", "--seq", "9:1"},
		{"edit", "--model", "mnist-gan", "--editor", "sefa", "--seq", "0"},
		{"edit", "--model", "mnist-gan", "--editor", "sefa", "--seq", "0:x"},
		{"edit", "--model", "mnist-gan", "--editor", "sefa", "--seq", "0:1", "--seeds", "a"},
		{"discover", "--model", "mnist-gan", "--method", "magic"},
	} {
		errb.Reset()
		if code := run(bad, &out, &errb); code != exitUsage {
			t.Errorf("%v: code %d (%s), want %d", bad, code, errb.String(), exitUsage)
		}
	}
	errb.Reset()
	if code := run([]string{"edit", "--model", "nosuch", "--editor", "x", "--seq", "0:1"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "nosuch") {
		t.Errorf("missing model: %d %s", code, errb.String())
	}
}

// TestDemoWritesReport runs the README's main job at small sizes: the
// study report on the shipped faces editors and the models page.
func TestDemoWritesReport(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	var out, errb bytes.Buffer
	if code := run([]string{"demo", "--n", "2", "--comm-n", "1", "--quality-n", "8", "--pseudocases", "2", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("demo: %d %s", code, errb.String())
	}
	var res struct{ Report string }
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || filepath.Base(res.Report) != "index.html" {
		t.Fatalf("demo --json printed %q (%v)", out.String(), err)
	}
	page, err := os.ReadFile(res.Report)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sequence-seed7.png", "commutativity.png", "curvilinear-attributes.png", "interfacegan-traversal.png", "models.html", "pseudocases.html"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report lacks %s", want)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(res.Report), want)); err != nil {
			t.Error(err)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(filepath.Dir(res.Report), "metrics.json"))
	var m struct {
		Editors []struct {
			Method        string
			Commutativity struct{ Latent float64 }
		}
	}
	if err := json.Unmarshal(raw, &m); err != nil || len(m.Editors) != len(demoEditors) {
		t.Fatalf("metrics.json: %v, %d editors", err, len(m.Editors))
	}
	// The study's claim, on the shipped editors: linear edits commute
	// exactly, curvilinear ones to float error, warped ones do not.
	comm := map[string]float64{}
	for _, e := range m.Editors {
		comm[e.Method] = e.Commutativity.Latent
	}
	if comm["linear"] > 1e-6 || comm["curvilinear"] > 1e-3 || comm["warped"] < 10*comm["curvilinear"] {
		t.Errorf("latent commutativity %v: want linear 0 < curvilinear ≪ warped", comm)
	}
}

// TestSampleWritesFiles: `sample` writes n pictures, their latents and a
// contact sheet; picture i is exactly the editor's picture of seed seed+i
// and its latents.csv row reads back as that latent.
func TestSampleWritesFiles(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"sample", "--model", "faces-gan", "--n", "3", "--seed", "7", "--out", dir, "--json"}, &out, &errb); code != 0 {
		t.Fatalf("code %d: %s", code, errb.String())
	}
	var res sampleResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.N != 3 || res.Seed != 7 {
		t.Fatalf("result %q: %v", out.String(), err)
	}
	f, err := os.Open(filepath.Join(dir, "latents.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != 4 || rows[0][0] != "file" || rows[0][1] != "seed" {
		t.Fatalf("latents.csv: %d rows, %v", len(rows), err)
	}
	ws, err := workspace.Open("faces-gan", "")
	if err != nil {
		t.Fatal(err)
	}
	d := ws.Model.LatentDim()
	row := rows[3] // picture 2, seed 9
	if row[0] != "images/000002.png" || row[1] != "9" || len(row) != 2+d {
		t.Fatalf("row %q", row[:2])
	}
	z := generator.Latent(9, d)
	for j, v := range z {
		if got, err := strconv.ParseFloat(row[2+j], 32); err != nil || float32(got) != v {
			t.Fatalf("z%d = %q, want %v", j, row[2+j], v)
		}
	}
	want, err := server.Render(ws.Model, z)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := os.Open(filepath.Join(dir, row[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	got, err := png.Decode(pf)
	if err != nil {
		t.Fatal(err)
	}
	b := want.Bounds()
	if got.Bounds() != b {
		t.Fatalf("picture %v, editor's %v", got.Bounds(), b)
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r1, g1, b1, _ := got.At(x, y).RGBA()
			r2, g2, b2, _ := want.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 {
				t.Fatalf("pixel (%d,%d) differs from the editor's picture of seed 9", x, y)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "contact.png")); err != nil {
		t.Error(err)
	}
	for _, args := range [][]string{
		{"sample", "--model", "faces-gan", "--n", "0", "--out", dir},
		{"sample", "--model", "faces-gan"},
		{"sample", "--out", dir},
	} {
		errb.Reset()
		if code := run(args, &out, &errb); code != exitUsage {
			t.Errorf("%v: code %d, want %d (%s)", args, code, exitUsage, errb.String())
		}
	}
	errb.Reset()
	if code := run([]string{"sample", "--model", "nosuch-model", "--out", dir}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "nosuch-model") {
		t.Errorf("unknown model: code %d, %s", code, errb.String())
	}
}

// TestDiscoverRefusesBadOptions: the options the old parser swallowed exit 2
// before any work, with a message naming the key.
func TestDiscoverRefusesBadOptions(t *testing.T) {
	for _, tc := range []struct{ method, opt, key string }{
		{"linear", "orthonormal=1", "orthonormal"},
		{"linear", "nosuchkey=3", "nosuchkey"},
		{"warped", "dipoles=16.7", "dipoles"},
		{"warped", "dipoles=5000", "dipoles"},
		{"interfacegan", "condition=smile", "condition"},
	} {
		var out, errb bytes.Buffer
		code := run([]string{"discover", "--model", "faces-gan", "--method", tc.method, "--name", "x", "--opt", tc.opt}, &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), tc.key) {
			t.Errorf("--method %s --opt %s: code %d, stderr %q; want %d naming %q", tc.method, tc.opt, code, errb.String(), exitUsage, tc.key)
		}
	}
}

// TestOracleReportsTheShippedOne: the faces GAN ships an oracle; the command
// reports its R² without training, and refuses a missing --model.
func TestOracleReportsTheShippedOne(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"oracle", "--model", "faces-gan", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("code %d: %s", code, errb.String())
	}
	var res struct {
		Trained bool               `json:"trained"`
		R2      map[string]float64 `json:"r2"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Trained || !(res.R2["smile"] > 0.5) {
		t.Fatalf("result %q: %v", out.String(), err)
	}
	if code := run([]string{"oracle"}, &out, &errb); code != exitUsage {
		t.Errorf("oracle without --model: exit %d, want %d", code, exitUsage)
	}
}
