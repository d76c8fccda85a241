package generator

import (
	"math"
	"strings"
	"testing"
)

// TestConfigOutputRange: config.output_range is accepted on the
// architectures without tanh and refused, naming the field, when malformed
// or on the others.
func TestConfigOutputRange(t *testing.T) {
	sg2 := Default("gan", "imported")
	sg2.ArchKind, sg2.Size, sg2.Channels, sg2.Latent, sg2.MapDepth, sg2.Widths = ArchStyleGAN2, 8, 3, 4, 1, []int{4, 4}
	onnx := Default("gan", "imported")
	onnx.ArchKind, onnx.Size, onnx.Channels, onnx.Latent = ArchONNX, 32, 3, 8
	dcgan := Default("gan", "faces")
	dcgan.Size, dcgan.Channels = 32, 3
	for _, c := range []struct {
		name string
		cfg  Config
		r    []float64
		want string // "" accepted
	}{
		{"stylegan2 [0,255]", sg2, []float64{0, 255}, ""},
		{"onnx [0,1]", onnx, []float64{0, 1}, ""},
		{"onnx none", onnx, nil, ""},
		{"negative range", onnx, []float64{-2, -1}, ""},
		{"reversed", onnx, []float64{1, 0}, "LO must be below HI"},
		{"equal", sg2, []float64{3, 3}, "LO must be below HI"},
		{"NaN", onnx, []float64{math.NaN(), 1}, "must be finite"},
		{"Inf", sg2, []float64{0, math.Inf(1)}, "must be finite"},
		{"one value", onnx, []float64{1}, "want two numbers"},
		{"empty", onnx, []float64{}, "want two numbers"},
		{"dcgan", dcgan, []float64{0, 1}, "only arch [stylegan2 onnx] have one"},
	} {
		cfg := c.cfg
		cfg.OutputRange = c.r
		err := cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "output_range")):
			t.Errorf("%s: %v, want an error naming output_range and saying %q", c.name, err, c.want)
		}
	}
}
