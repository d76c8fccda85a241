package interop

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"latentedit/generator"
)

// torchPython returns a python3 that imports torch. Debian's python3-torch
// is a test dependency (scripts/test.sh installs it): without it the test
// fails rather than skips, like the other Debian dependencies. /usr/bin
// comes first because a python3 earlier on PATH (pyenv) may lack it.
func torchPython(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import torch").Run() == nil {
			return p
		}
	}
	t.Fatal("no python3 with torch: install Debian's python3-torch (scripts/test.sh does)")
	return ""
}

// fixture is one PyTorch generator the Python side builds (testdata/fixtures.py).
type fixture struct {
	Name     string `json:"name"`
	Arch     string `json:"arch"` // the Python builder: dcgan or sn_resnet
	Seed     int    `json:"seed"`
	N        int    `json:"n"`
	Size     int    `json:"size,omitempty"`
	Channels int    `json:"channels"`
	Base     int    `json:"base,omitempty"`
	Latent   int    `json:"latent"`
	Widths   []int  `json:"widths,omitempty"`
	// style: mapping depth, noise inputs, truncation ψ (0: none)
	MapDepth int     `json:"map_depth,omitempty"`
	Noise    bool    `json:"noise,omitempty"`
	Psi      float64 `json:"psi,omitempty"`
	// stylegan2: the output range the weights are rescaled to (the images
	// are then PyTorch's raw output, unclamped)
	Range []float64 `json:"range,omitempty"`
	// onnx: the final activation (tanh, sigmoid), an op the converter lacks
	// (leaky, convt), the batch of the export and whether it is symbolic
	Final       string `json:"final,omitempty"`
	Extra       string `json:"extra,omitempty"`
	ExportBatch int    `json:"export_batch,omitempty"`
	Dynamic     bool   `json:"dynamic,omitempty"`
}

// makeFixtures writes each fixture's .pt, .safetensors, latents (.z) and
// PyTorch's images of them (.img) into a temporary directory.
func makeFixtures(t testing.TB, fs ...fixture) string {
	t.Helper()
	dir := t.TempDir()
	spec, _ := json.Marshal(fs)
	out, err := exec.Command(torchPython(t), "testdata/fixtures.py", dir, string(spec)).CombinedOutput()
	if err != nil {
		t.Fatalf("fixtures.py: %v\n%s", err, out)
	}
	return dir
}

func readFloats(t testing.TB, path string) []float32 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

// maxDiff is the largest |a[i] - b[i]|; a length mismatch is +Inf.
func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

// importAndCompare imports file, loads the model directory as every command
// does, and compares its images of the fixture's latents with PyTorch's.
func importAndCompare(t testing.TB, dir string, f fixture, file string, o Options) string {
	t.Helper()
	o.From, o.Backend = filepath.Join(dir, file), cpu(t)
	if o.Out == "" {
		o.Out = filepath.Join(t.TempDir(), "model")
	}
	info, err := Import(o)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if info.Source == nil || len(info.Source.SHA256) != 64 || info.Source.Arch != o.Arch {
		t.Fatalf("%s: model.json source %+v", file, info.Source)
	}
	m, err := generator.Load(o.Out, cpu(t))
	if err != nil {
		t.Fatalf("%s: load the imported model: %v", file, err)
	}
	got, err := m.GenerateFloats(readFloats(t, filepath.Join(dir, f.Name+".z")), f.N)
	if err != nil {
		t.Fatal(err)
	}
	want := readFloats(t, filepath.Join(dir, f.Name+".img"))
	if d := maxDiff(got, want); d > 1e-4 {
		t.Errorf("%s: max |latentedit − PyTorch| = %g over %d pixels, want ≤ 1e-4", file, d, len(want))
	} else {
		t.Logf("%s: max |latentedit − PyTorch| = %.2g", file, d)
	}
	if _, err := os.Stat(filepath.Join(o.Out, generator.SamplesPNG)); err != nil {
		t.Errorf("%s: %v", file, err)
	}
	return o.Out
}

var (
	dcganFixture = fixture{Name: "dcgan", Arch: "dcgan", Seed: 1, N: 5, Size: 32, Channels: 3, Base: 8, Latent: 16}
	// Narrow widths keep the test fast; they cover both kinds of bypass
	// (plain upsample where the width stays, a convolution where it changes).
	snFixture = fixture{Name: "sn", Arch: "sn_resnet", Seed: 2, N: 5, Channels: 1, Latent: 12, Widths: []int{16, 16, 8, 8}}
	// sn_resnet64's five widths, narrowed, at its 128-d latent and 64 px.
	sn64Fixture = fixture{Name: "sn64", Arch: "sn_resnet", Seed: 3, N: 3, Channels: 3, Latent: 128, Widths: []int{32, 16, 16, 8, 4}}
)

// TestImportMatchesPyTorch builds each supported architecture in PyTorch
// with seeded random weights, saves it as .pt and .safetensors, imports
// both and compares the images of fixed latents.
func TestImportMatchesPyTorch(t *testing.T) {
	dir := makeFixtures(t, dcganFixture, snFixture, sn64Fixture)
	cases := []struct {
		f fixture
		o Options
	}{
		{dcganFixture, Options{Arch: ArchDCGAN}},
		{snFixture, Options{Arch: ArchSNResNet32, Widths: snFixture.Widths, Latent: snFixture.Latent}},
		// No Widths: the importer reads them from the file.
		{sn64Fixture, Options{Arch: ArchSNResNet64}},
	}
	for _, c := range cases {
		for _, ext := range []string{".pt", ".safetensors"} {
			t.Run(c.f.Name+ext, func(t *testing.T) { importAndCompare(t, dir, c.f, c.f.Name+ext, c.o) })
		}
	}
}

// TestDCGANRoundTrip takes an imported dcgan model directory back to
// PyTorch through latentedit_models.load_latentedit_dcgan (the way a model
// trained here goes to PyTorch) and compares the images there.
func TestDCGANRoundTrip(t *testing.T) {
	dir := makeFixtures(t, dcganFixture)
	out := importAndCompare(t, dir, dcganFixture, "dcgan.pt", Options{Arch: ArchDCGAN})
	img := filepath.Join(t.TempDir(), "back.img")
	cmd := exec.Command(torchPython(t), "testdata/fixtures.py", "export", out, filepath.Join(dir, "dcgan.z"), "5", img)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("export: %v\n%s", err, b)
	}
	if d := maxDiff(readFloats(t, img), readFloats(t, filepath.Join(dir, "dcgan.img"))); d > 1e-5 {
		t.Errorf("PyTorch → latentedit → PyTorch: max difference %g, want ≤ 1e-5", d)
	}
}

// TestImportRefusals: each bad input gets a clear error and leaves nothing
// behind — no model directory, no temporary directory beside it.
func TestImportRefusals(t *testing.T) {
	dir := makeFixtures(t, dcganFixture, snFixture)
	write := func(name string, data []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	truncated := func(name string) string {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return write(name, raw[:len(raw)/2])
	}
	existing := t.TempDir()
	snOpts := Options{Arch: ArchSNResNet32, Widths: snFixture.Widths, Latent: snFixture.Latent}
	with := func(o Options, from string) Options { o.From = from; return o }
	cases := []struct {
		name string
		o    Options
		want []string
	}{
		{"truncated pt", with(snOpts, truncated("sn.pt")), []string{"not a PyTorch zip archive", "truncated"}},
		{"truncated safetensors", with(snOpts, truncated("sn.safetensors")), []string{"truncated"}},
		{"wrong arch", Options{Arch: ArchDCGAN, From: filepath.Join(dir, "sn.pt")}, []string{"not a dcgan state dict", "0.weight"}},
		{"wrong arch the other way", with(snOpts, filepath.Join(dir, "dcgan.pt")), []string{"missing keys 0.weight", "unknown keys dense.bias"}},
		{"shape mismatch", with(Options{Arch: ArchSNResNet32, Widths: snFixture.Widths, Latent: 64}, filepath.Join(dir, "sn.safetensors")),
			[]string{"key 0.weight: expected shape [256 64], found [256 12]"}},
		{"narrower widths", with(Options{Arch: ArchSNResNet32, Widths: []int{16, 16, 8, 4}, Latent: 12}, filepath.Join(dir, "sn.pt")),
			[]string{"expected shape [4 8 3 3], found [8 8 3 3]"}},
		{"unknown pickle global", with(snOpts, write("evil.pt", systemPickleZip(t, "/nonexistent/marker"))), []string{"refused pickle global posix.system"}},
		{"NaN weight", with(snOpts, write("nan.safetensors", safetensorsFile(t, "0.weight", []float32{1, float32(math.NaN())}))), []string{"tensor 0.weight", "NaN"}},
		{"2 GB header claim", with(snOpts, write("big.safetensors", append(binary.LittleEndian.AppendUint64(nil, 2<<30), "{}"...))),
			[]string{"header length claims 2147483648 bytes but only 2 follow"}},
		{"unknown arch", Options{Arch: "biggan", From: filepath.Join(dir, "sn.pt")}, []string{`unknown --arch "biggan"`}},
		{"unknown extension", with(snOpts, write("g.ckpt", []byte("x"))), []string{`unknown extension ".ckpt"`}},
		{"output exists", Options{Arch: ArchDCGAN, From: filepath.Join(dir, "dcgan.pt"), Out: existing}, []string{"already exists"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parent := t.TempDir()
			o := c.o
			o.Backend = cpu(t)
			if o.Out == "" {
				o.Out = filepath.Join(parent, "model")
			}
			_, err := Import(o)
			if err == nil {
				t.Fatal("imported; want an error")
			}
			if testing.Verbose() {
				t.Log(err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if o.Out != existing {
				if left, _ := os.ReadDir(parent); len(left) != 0 {
					t.Errorf("left behind: %v", left)
				}
			}
		})
	}
}
