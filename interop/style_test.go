package interop

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/generator"
	"latentedit/interop/tensorfile"
)

var (
	// Every part on: noise (seeded strengths and buffers), two mapping
	// layers, no truncation.
	styleFixture = fixture{Name: "style", Arch: "style", Seed: 4, N: 4, Size: 16, Channels: 3, Base: 4, Latent: 8, MapDepth: 2, Noise: true}
	// Truncation towards a seeded w_avg, one mapping layer, no noise, one
	// channel, four blocks.
	styleTruncFixture = fixture{Name: "style_psi", Arch: "style", Seed: 5, N: 4, Size: 32, Channels: 1, Base: 4, Latent: 6, MapDepth: 1, Psi: 0.7}
)

// TestImportStyleMatchesPyTorch imports LatenteditStyle generators with
// seeded weights from .pt and .safetensors and compares images of fixed
// latents with PyTorch's.
func TestImportStyleMatchesPyTorch(t *testing.T) {
	dir := makeFixtures(t, styleFixture, styleTruncFixture)
	for _, f := range []fixture{styleFixture, styleTruncFixture} {
		for _, ext := range []string{".pt", ".safetensors"} {
			t.Run(f.Name+ext, func(t *testing.T) {
				out := importAndCompare(t, dir, f, f.Name+ext, Options{Arch: ArchStyle, Truncation: f.Psi})
				info, err := generator.ReadInfo(out)
				if err != nil {
					t.Fatal(err)
				}
				c := info.Config
				if c.ArchName() != generator.ArchStyle || c.MapDepth != f.MapDepth || c.Noise != f.Noise || c.Truncation != f.Psi || c.Base != f.Base {
					t.Errorf("model.json config: arch %s, map_depth %d, noise %v, truncation %g, base %d; want style, %d, %v, %g, %d",
						c.ArchName(), c.MapDepth, c.Noise, c.Truncation, c.Base, f.MapDepth, f.Noise, f.Psi, f.Base)
				}
			})
		}
	}
}

// styleModel writes a style model directory as training would, with every
// variable of the sampling generator set to seeded random values (biases,
// noise strengths and w_avg too, which start at zero in training).
func styleModel(t *testing.T, seed uint64) (string, generator.Config) {
	t.Helper()
	cfg := generator.Default("gan", "imported")
	cfg.Size, cfg.Channels, cfg.Base, cfg.Latent, cfg.Steps = 16, 3, 4, 8, 0
	cfg.ArchKind, cfg.MapDepth, cfg.Noise, cfg.Truncation = generator.ArchStyle, 2, true, 0.8
	a, err := cfg.Arch()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.New()
	// One run creates the variables with their shapes.
	_, err = context.ExecOnce(cpu(t), ctx, func(ctx *context.Context, z *graph.Node) *graph.Node {
		return a.Generate(ctx.In("generator"), z)
	}, tensors.FromShape(shapes.Make(dtypes.Float32, 1, cfg.Latent)))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	vals := map[string]*tensors.Tensor{}
	for v := range ctx.IterVariables() {
		dims := v.Shape().Dimensions
		scale := map[string]float64{"biases": 0.1, "strength": 0.3, "w_avg": 0.5}[v.Name()]
		if v.Name() == "weights" { // ~ unit-variance outputs: 1/√fan-in
			scale = 1 / math.Sqrt(float64(v.Shape().Size()/dims[len(dims)-1]))
		}
		if scale == 0 { // the constant and the noise buffers
			scale = 1
		}
		data := make([]float32, v.Shape().Size())
		for i := range data {
			data[i] = float32(scale * r.NormFloat64())
		}
		vals[v.ScopeAndName()] = tensors.FromFlatDataAndDimensions(data, dims...)
	}
	if _, ok := vals["/generator/w_avg"]; !ok {
		t.Fatalf("no w_avg among %d variables", len(vals))
	}
	dir := filepath.Join(t.TempDir(), "trained")
	info := generator.Info{Kind: "gan", LatentDim: cfg.Latent, Height: cfg.Size, Width: cfg.Size, Channels: cfg.Channels, Dataset: cfg.Dataset, Config: cfg}
	if err := generator.WriteModel(dir, info, vals, nil); err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

// TestStyleRoundTrip takes a style model directory of ours to PyTorch
// (load_latentedit_style), compares PyTorch's images with ours, saves the
// PyTorch module's state dict and imports it back: the images must match
// the original's.
func TestStyleRoundTrip(t *testing.T) {
	dir, cfg := styleModel(t, 11)
	m, err := generator.Load(dir, cpu(t))
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	var z []float32
	for _, l := range generator.Latents(3, n, cfg.Latent) {
		z = append(z, l...)
	}
	want, err := m.GenerateFloats(z, n)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	zfile, img, pt := filepath.Join(tmp, "z"), filepath.Join(tmp, "img"), filepath.Join(tmp, "back.pt")
	var raw []byte
	for _, v := range z {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	if err := os.WriteFile(zfile, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(torchPython(t), "testdata/fixtures.py", "export", dir, zfile, strconv.Itoa(n), img, pt)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("export: %v\n%s", err, b)
	}
	if d := maxDiff(readFloats(t, img), want); d > 1e-4 {
		t.Errorf("latentedit → PyTorch: max |PyTorch − latentedit| = %g, want ≤ 1e-4", d)
	} else {
		t.Logf("latentedit → PyTorch: max |PyTorch − latentedit| = %.2g", d)
	}
	back := filepath.Join(tmp, "back")
	if _, err := Import(Options{From: pt, Arch: ArchStyle, Out: back, Truncation: cfg.Truncation, Backend: cpu(t)}); err != nil {
		t.Fatal(err)
	}
	m2, err := generator.Load(back, cpu(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := m2.GenerateFloats(z, n)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(got, want); d > 1e-5 {
		t.Errorf("latentedit → PyTorch → latentedit: max difference %g, want ≤ 1e-5", d)
	} else {
		t.Logf("latentedit → PyTorch → latentedit: max difference %.2g", d)
	}
}

// TestImportStyleRefusals: a tensor whose shape disagrees with the layout
// the rest of the file implies is refused by key, and ψ is refused for
// architectures without one; nothing is left behind.
func TestImportStyleRefusals(t *testing.T) {
	dir := makeFixtures(t, styleFixture)
	ts, _, err := tensorfile.Read(filepath.Join(dir, "style.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	ts["blocks.1.conv.affine.weight"] = tensorfile.Tensor{DType: "F32", Shape: []int{33, 8}, Data: make([]float32, 33*8)}
	bad := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := os.WriteFile(bad, safetensorsOf(t, ts), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"shape mismatch", Options{Arch: ArchStyle, From: bad}, "key blocks.1.conv.affine.weight: expected shape [16 8], found [33 8]"},
		{"latent mismatch", Options{Arch: ArchStyle, From: filepath.Join(dir, "style.pt"), Latent: 12}, "latent dimension 8, but --latent 12"},
		{"truncation on dcgan", Options{Arch: ArchDCGAN, From: filepath.Join(dir, "style.pt"), Truncation: 0.5}, "only --arch style"},
		{"truncation out of range", Options{Arch: ArchStyle, From: filepath.Join(dir, "style.pt"), Truncation: 1.5}, "truncation 1.5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parent := t.TempDir()
			o := c.o
			o.Out, o.Backend = filepath.Join(parent, "model"), cpu(t)
			_, err := Import(o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
			if left, _ := os.ReadDir(parent); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}
