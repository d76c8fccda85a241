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
	"latentedit/interop/tensorfile"
)

var (
	// 16 px, narrow channels by resolution, two mapping layers, W+ images too.
	sg2Fixture = fixture{Name: "sg2", Arch: "stylegan2", Seed: 6, N: 3, Latent: 8, MapDepth: 2, Widths: []int{8, 6, 4}}
	// 32 px, truncation ψ 0.7 towards the mean w of import's latents.
	sg2TruncFixture = fixture{Name: "sg2_psi", Arch: "stylegan2", Seed: 7, N: 3, Latent: 6, MapDepth: 2, Widths: []int{4, 4, 6, 4}, Psi: 0.7}
)

// writeFloats writes v as little-endian float32.
func writeFloats(t testing.TB, path string, v []float32) {
	t.Helper()
	raw := make([]byte, 0, 4*len(v))
	for _, x := range v {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(x))
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestImportStyleGAN2MatchesPyTorch builds rosinality's Generator (its
// PyTorch re-implementation, the same state dict) with seeded weights,
// imports it from .pt, .safetensors and a train.py-style checkpoint with a
// g_ema entry, and compares images of fixed latents (fixed noise), W+ images
// and truncated ones with PyTorch's.
func TestImportStyleGAN2MatchesPyTorch(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []fixture{sg2Fixture, sg2TruncFixture} {
		var z []float32
		for _, v := range generator.Latents(0, generator.FrameLatents, f.Latent) {
			z = append(z, v...)
		}
		writeFloats(t, filepath.Join(dir, f.Name+".zmean"), z)
	}
	cases := []map[string]any{}
	for _, f := range []fixture{sg2Fixture, sg2TruncFixture} {
		raw, _ := json.Marshal(f)
		var c map[string]any
		json.Unmarshal(raw, &c)
		c["wplus"] = f.Name == sg2Fixture.Name
		cases = append(cases, c)
	}
	spec, _ := json.Marshal(cases)
	if out, err := exec.Command(torchPython(t), "testdata/fixtures.py", dir, string(spec)).CombinedOutput(); err != nil {
		t.Fatalf("fixtures.py: %v\n%s", err, out)
	}
	for _, f := range []fixture{sg2Fixture, sg2TruncFixture} {
		for _, ext := range []string{".pt", ".safetensors", ".ckpt.pt"} {
			t.Run(f.Name+ext, func(t *testing.T) {
				out := importAndCompare(t, dir, f, f.Name+ext, Options{Arch: ArchStyleGAN2, Truncation: f.Psi, NMLP: f.MapDepth, Size: 4 << (len(f.Widths) - 1)})
				m, err := generator.Load(out, cpu(t))
				if err != nil {
					t.Fatal(err)
				}
				c := m.Info.Config
				if c.ArchName() != generator.ArchStyleGAN2 || c.MapDepth != f.MapDepth || c.Truncation != f.Psi || m.Arch.Styles() != 2*len(f.Widths) {
					t.Errorf("model.json config: arch %s, map_depth %d, truncation %g, styles %d", c.ArchName(), c.MapDepth, c.Truncation, m.Arch.Styles())
				}
				if f.Name != sg2Fixture.Name {
					return
				}
				got, err := m.SynthesizeFloats(readFloats(t, filepath.Join(dir, f.Name+".wplus")), f.N)
				if err != nil {
					t.Fatal(err)
				}
				if d := maxDiff(got, readFloats(t, filepath.Join(dir, f.Name+".wimg"))); d > 1e-4 {
					t.Errorf("W+: max |latentedit − PyTorch| = %g, want ≤ 1e-4", d)
				} else {
					t.Logf("W+: max |latentedit − PyTorch| = %.2g", d)
				}
			})
		}
	}
	// A wrong channel multiplier and a reshaped tensor are refused by name.
	o := Options{From: filepath.Join(dir, "sg2.pt"), Arch: ArchStyleGAN2, Out: filepath.Join(t.TempDir(), "m"), Backend: cpu(t), ChannelMultiplier: 2}
	if _, err := Import(o); err == nil || !strings.Contains(err.Error(), "--channel-multiplier 2") {
		t.Errorf("channel multiplier 2 on narrow channels: %v", err)
	}
	ts, _, err := tensorfile.Read(filepath.Join(dir, "sg2.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b := ts["convs.1.activate.bias"]
	ts["convs.1.activate.bias"] = tensorfile.Tensor{DType: "F32", Shape: []int{5}, Data: b.Data[:5]}
	bad := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := os.WriteFile(bad, safetensorsOf(t, ts), 0o644); err != nil {
		t.Fatal(err)
	}
	o.From, o.ChannelMultiplier = bad, 0
	if _, err := Import(o); err == nil || !strings.Contains(err.Error(), "key convs.1.activate.bias: expected shape [6], found [5]") {
		t.Errorf("reshaped bias: %v", err)
	}
}
