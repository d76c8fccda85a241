package interop

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"latentedit/generator"
)

// toUnit is what --range LO,HI promises: 2·(x−LO)/(HI−LO)−1, then the
// clamp to [-1, 1] every stylegan2 (and onnx) image gets.
func toUnit(v []float32, lo, hi float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(math.Max(-1, math.Min(1, 2*(float64(x)-lo)/(hi-lo)-1)))
	}
	return out
}

// TestImportStyleGAN2Range rescales a stylegan2 twin's output in PyTorch to
// [0, 1] and to [0, 255] (through its to-RGB weights: the state dict keeps
// rosinality's layout), imports it with --range and compares with
// 2·(out−LO)/(HI−LO)−1 of PyTorch's raw output. Without the range the same
// file gives other images (the test can tell).
func TestImportStyleGAN2Range(t *testing.T) {
	f01 := sg2Fixture
	f01.Name, f01.Range, f01.N = "sg2_01", []float64{0, 1}, 5
	f255 := sg2Fixture
	f255.Name, f255.Range, f255.N = "sg2_255", []float64{0, 255}, 5
	dir := makeFixtures(t, f01, f255)
	for _, f := range []fixture{f01, f255} {
		t.Run(f.Name, func(t *testing.T) {
			lo, hi := f.Range[0], f.Range[1]
			raw := readFloats(t, filepath.Join(dir, f.Name+".img"))
			inside := 0
			for _, v := range raw {
				if float64(v) > lo && float64(v) < hi {
					inside++
				}
			}
			if inside < len(raw)*3/4 { // most pixels unclamped: the comparison sees the mapping
				t.Fatalf("PyTorch's rescaled output: only %d of %d values inside (%g, %g)", inside, len(raw), lo, hi)
			}
			out := filepath.Join(t.TempDir(), "m")
			o := Options{From: filepath.Join(dir, f.Name+".pt"), Arch: ArchStyleGAN2, Out: out, Backend: cpu(t), Range: f.Range}
			if _, err := Import(o); err != nil {
				t.Fatal(err)
			}
			m, err := generator.Load(out, cpu(t))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(m.Info.Config.OutputRange, f.Range) {
				t.Errorf("model.json config.output_range %v, want %v", m.Info.Config.OutputRange, f.Range)
			}
			got, err := m.GenerateFloats(readFloats(t, filepath.Join(dir, f.Name+".z")), f.N)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(got, toUnit(raw, lo, hi)); d > 1e-4 {
				t.Errorf("max |latentedit − (2·(out−LO)/(HI−LO)−1)| = %g, want ≤ 1e-4", d)
			} else {
				t.Logf("[%g, %g]: max |latentedit − (2·(out−LO)/(HI−LO)−1)| = %.2g over %d values", lo, hi, d, len(raw))
			}
			// The same file without --range: the raw output clamped, far off.
			o.Range, o.Out = nil, filepath.Join(t.TempDir(), "m")
			if _, err := Import(o); err != nil {
				t.Fatal(err)
			}
			m2, err := generator.Load(o.Out, cpu(t))
			if err != nil {
				t.Fatal(err)
			}
			plain, err := m2.GenerateFloats(readFloats(t, filepath.Join(dir, f.Name+".z")), f.N)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(plain, toUnit(raw, lo, hi)); d < 0.1 {
				t.Errorf("without --range the images differ by only %g: the test cannot tell the mapping", d)
			}
		})
	}
}

// noLeftovers fails if parent holds anything (the model or a temporary
// import directory).
func noLeftovers(t *testing.T, parent string) {
	t.Helper()
	left, _ := os.ReadDir(parent)
	for _, e := range left {
		t.Errorf("left behind: %s", e.Name())
	}
}

// TestImportRangeRefusals: malformed, reversed, NaN and infinite ranges,
// ranges on the architectures whose tanh fixes [-1, 1], and a broken
// config.output_range in model.json are refused by name, leaving nothing.
func TestImportRangeRefusals(t *testing.T) {
	dir := makeFixtures(t, dcganFixture, sg2Fixture)
	sg2 := filepath.Join(dir, "sg2.pt")
	// What the command line refuses before anything is read (ParseRange).
	for _, c := range []struct{ in, want string }{
		{"1", "want two numbers LO,HI"},
		{"0,1,2", "want two numbers LO,HI"},
		{"a,b", `"a" is not a number`},
		{"0,", `"" is not a number`},
		{"1,0", "LO must be below HI"},
		{"2,2", "LO must be below HI"},
		{"NaN,1", "must be finite"},
		{"0,+Inf", "must be finite"},
	} {
		if _, err := ParseRange(c.in); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "--range") {
			t.Errorf("ParseRange(%q): %v, want an error naming --range and saying %q", c.in, err, c.want)
		}
	}
	if r, err := ParseRange(" 0, 255"); err != nil || !slices.Equal(r, []float64{0, 255}) {
		t.Errorf("ParseRange(\" 0, 255\") = %v, %v", r, err)
	}
	// What Import refuses, whoever calls it.
	cases := []struct {
		name string
		arch string
		from string
		r    []float64
		want string
	}{
		{"reversed", ArchStyleGAN2, sg2, []float64{255, 0}, "LO must be below HI"},
		{"NaN", ArchStyleGAN2, sg2, []float64{math.NaN(), 1}, "must be finite"},
		{"Inf", ArchStyleGAN2, sg2, []float64{0, math.Inf(1)}, "must be finite"},
		{"one value", ArchStyleGAN2, sg2, []float64{1}, "want two numbers"},
		{"dcgan", ArchDCGAN, filepath.Join(dir, "dcgan.pt"), []float64{0, 1}, "arch dcgan ends in tanh"},
		{"style", ArchStyle, filepath.Join(dir, "dcgan.pt"), []float64{0, 1}, "arch style ends in tanh"},
		{"sn_resnet32", ArchSNResNet32, filepath.Join(dir, "dcgan.pt"), []float64{0, 1}, "arch sn_resnet32 ends in tanh"},
		{"sn_resnet64", ArchSNResNet64, filepath.Join(dir, "dcgan.pt"), []float64{0, 255}, "arch sn_resnet64 ends in tanh"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parent := t.TempDir()
			_, err := Import(Options{From: c.from, Arch: c.arch, Out: filepath.Join(parent, "model"), Backend: cpu(t), Range: c.r})
			if err == nil {
				t.Fatal("imported; want an error")
			}
			for _, w := range []string{"--range", c.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			noLeftovers(t, parent)
		})
	}

	// A model.json whose config.output_range is broken is refused when read,
	// naming the field.
	parent := t.TempDir()
	good := filepath.Join(parent, "m")
	if _, err := Import(Options{From: sg2, Arch: ArchStyleGAN2, Out: good, Backend: cpu(t), Range: []float64{0, 1}}); err != nil {
		t.Fatal(err)
	}
	rawInfo, err := os.ReadFile(filepath.Join(good, generator.InfoFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(cfg map[string]any)
		want string
	}{
		{"reversed", func(c map[string]any) { c["output_range"] = []float64{1, 0} }, "LO must be below HI"},
		{"one value", func(c map[string]any) { c["output_range"] = []float64{1} }, "want two numbers"},
		{"three values", func(c map[string]any) { c["output_range"] = []float64{0, 1, 2} }, "want two numbers"},
		{"a string", func(c map[string]any) { c["output_range"] = "0,1" }, "output_range"},
		{"on dcgan", func(c map[string]any) { c["arch"] = "dcgan" }, "only arch [stylegan2 onnx] have one"},
	} {
		t.Run("model.json "+c.name, func(t *testing.T) {
			var info map[string]any
			if err := json.Unmarshal(rawInfo, &info); err != nil {
				t.Fatal(err)
			}
			c.edit(info["config"].(map[string]any))
			b, _ := json.Marshal(info)
			d := filepath.Join(t.TempDir(), "m")
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, generator.InfoFile), b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := generator.ReadInfo(d)
			if err == nil {
				t.Fatal("read; want an error")
			}
			for _, w := range []string{generator.InfoFile, "output_range", c.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
