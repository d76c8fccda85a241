package interop

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"latentedit/edit"
	"latentedit/generator"
	"latentedit/internal/artifact"
)

var (
	// Exported at batch 2 with a symbolic batch, compared at 5.
	onnxTanhFixture = fixture{Name: "onnx_tanh", Arch: "onnx", Seed: 11, N: 5, Channels: 3, Latent: 8, Widths: []int{16, 8, 8}, Final: "tanh", ExportBatch: 2, Dynamic: true}
	// Sigmoid output in [0, 1] (imported with --range 0,1), one channel,
	// the batch fixed at 3 by the export: run in padded chunks of 3.
	onnxSigmoidFixture = fixture{Name: "onnx_sigmoid", Arch: "onnx", Seed: 12, N: 5, Channels: 1, Latent: 6, Widths: []int{8, 8, 4}, Final: "sigmoid", ExportBatch: 3}
	onnxLeakyFixture   = fixture{Name: "onnx_leaky", Arch: "onnx", Seed: 13, N: 1, Channels: 3, Latent: 4, Widths: []int{4, 4, 4}, Final: "tanh", Extra: "leaky", ExportBatch: 1}
	onnxConvTFixture   = fixture{Name: "onnx_convt", Arch: "onnx", Seed: 14, N: 1, Channels: 3, Latent: 4, Widths: []int{4, 4, 4}, Final: "tanh", Extra: "convt", ExportBatch: 1}
)

// TestImportONNXMatchesPyTorch exports small seeded 32×32 generators with
// torch.onnx.export, imports them (the sigmoid one with --range 0,1) and
// compares images of fixed latents with PyTorch's, at a batch other than
// the export's; the .onnx file is kept byte for byte and checked at load.
func TestImportONNXMatchesPyTorch(t *testing.T) {
	dir := makeFixtures(t, onnxTanhFixture, onnxSigmoidFixture)
	for _, c := range []struct {
		f     fixture
		r     []float64
		batch int
	}{
		{onnxTanhFixture, nil, 0},
		{onnxSigmoidFixture, []float64{0, 1}, 3},
	} {
		t.Run(c.f.Name, func(t *testing.T) {
			src := filepath.Join(dir, c.f.Name+".onnx")
			out := filepath.Join(t.TempDir(), "m")
			info, err := Import(Options{From: src, Arch: ArchONNX, Out: out, Backend: cpu(t), Range: c.r})
			if err != nil {
				t.Fatal(err)
			}
			if info.LatentDim != c.f.Latent || info.Height != 32 || info.Width != 32 || info.Channels != c.f.Channels {
				t.Errorf("model.json: latent %d, %dx%dx%d; want %d, 32x32x%d", info.LatentDim, info.Height, info.Width, info.Channels, c.f.Latent, c.f.Channels)
			}
			orig, _ := os.ReadFile(src)
			kept, err := os.ReadFile(filepath.Join(out, generator.ONNXFile))
			if err != nil || !bytes.Equal(orig, kept) {
				t.Errorf("%s is not the imported file byte for byte (%v)", generator.ONNXFile, err)
			}
			if sum, _ := artifact.FileSHA256(src); info.Source == nil || info.Source.SHA256 != sum || info.Source.Format != "onnx" {
				t.Errorf("model.json source %+v, want sha256 %s, format onnx", info.Source, sum)
			}
			m, err := generator.Load(out, cpu(t))
			if err != nil {
				t.Fatal(err)
			}
			if g := m.Arch; g.Kind != generator.ArchONNX || !slices.Equal(g.OutputRange, c.r) {
				t.Errorf("arch %s, output range %v", g.Kind, g.OutputRange)
			}
			want := readFloats(t, filepath.Join(dir, c.f.Name+".img"))
			if c.r != nil {
				want = toUnit(want, c.r[0], c.r[1])
			}
			got, err := m.GenerateFloats(readFloats(t, filepath.Join(dir, c.f.Name+".z")), c.f.N)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(got, want); d > 1e-4 {
				t.Errorf("max |latentedit − PyTorch| = %g over %d values, want ≤ 1e-4", d, len(want))
			} else {
				t.Logf("%d latents (export batch %d): max |latentedit − PyTorch| = %.2g over %d values", c.f.N, c.f.ExportBatch, d, len(want))
			}
			// One latent at a time gives the same images (no batch coupling).
			one, err := m.GenerateFloats(readFloats(t, filepath.Join(dir, c.f.Name+".z"))[:c.f.Latent], 1)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(one, got[:len(one)]); d > 1e-6 {
				t.Errorf("latent 0 alone differs from the batch by %g", d)
			}

			// The methods that need no gradient through G work; the others
			// are refused with the reason.
			if _, err := edit.FitClosedForm(m, "ganspace", 2, 64, 1, edit.Options{"mode": "latent"}); err != nil {
				t.Errorf("ganspace mode=latent: %v", err)
			}
			for _, c := range []struct {
				method string
				opt    edit.Options
				want   string
			}{
				{"sefa", nil, "no first layer"},
				{"ganspace", nil, "mode=latent"},
			} {
				if _, err := edit.FitClosedForm(m, c.method, 2, 64, 1, c.opt); err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("%s on an onnx model: %v, want an error saying %q", c.method, err, c.want)
				}
			}
			if err := m.Differentiable(); err == nil || !strings.Contains(err.Error(), "stock conv gradient") {
				t.Errorf("Differentiable: %v", err)
			}

			// A corrupted copy is refused at load.
			bad := filepath.Join(t.TempDir(), "bad")
			if err := os.CopyFS(bad, os.DirFS(out)); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(bad, generator.ONNXFile)
			raw := slices.Clone(kept)
			raw[len(raw)/2] ^= 1
			os.Chmod(p, 0o644)
			if err := os.WriteFile(p, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := generator.Load(bad, cpu(t)); err == nil || !strings.Contains(err.Error(), "does not match") || !strings.Contains(err.Error(), "source.sha256") {
				t.Errorf("a corrupted %s: %v, want a sha256 mismatch naming source.sha256", generator.ONNXFile, err)
			}
		})
	}
}

// TestImportONNXRefusals: graphs with ops the converter lacks are refused
// naming the op, before conversion; so are files that are not ONNX models
// and the options the ONNX route does not take. Nothing is left behind.
func TestImportONNXRefusals(t *testing.T) {
	dir := makeFixtures(t, onnxLeakyFixture, onnxConvTFixture, onnxTanhFixture)
	garbage := filepath.Join(t.TempDir(), "g.onnx")
	if err := os.WriteFile(garbage, []byte("\xff\xff\xff not a protobuf"), 0o644); err != nil {
		t.Fatal(err)
	}
	tanh := filepath.Join(dir, "onnx_tanh.onnx")
	for _, c := range []struct {
		name string
		o    Options
		want []string
	}{
		{"LeakyRelu", Options{From: filepath.Join(dir, "onnx_leaky.onnx")}, []string{"lacks: LeakyRelu (3 nodes)", "torch.maximum"}},
		{"ConvTranspose", Options{From: filepath.Join(dir, "onnx_convt.onnx")}, []string{"lacks: ConvTranspose (1 node)", "nn.Upsample"}},
		{"not onnx", Options{From: garbage}, []string{"not an ONNX model"}},
		{"wrong latent", Options{From: tanh, Latent: 9}, []string{"latents of 8, but --latent 9"}},
		{"wrong size", Options{From: tanh, Size: 64}, []string{"32-pixel images, but --size 64"}},
		{"truncation", Options{From: tanh, Truncation: 0.7}, []string{"only --arch style and stylegan2 have a truncation"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			parent := t.TempDir()
			o := c.o
			o.Arch, o.Out, o.Backend = ArchONNX, filepath.Join(parent, "model"), cpu(t)
			_, err := Import(o)
			if err == nil {
				t.Fatal("imported; want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			noLeftovers(t, parent)
		})
	}
}
