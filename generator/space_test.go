package generator

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// styleModel trains a tiny style GAN for a space test (a few steps: the
// weights only need to be a generic, non-degenerate generator).
func styleModel(t *testing.T) *Model {
	t.Helper()
	dir := t.TempDir()
	cfg := tinyStyle(4)
	cfg.Truncation = 0.8 // lifting must reproduce the truncated picture
	if _, err := Train(cfg, Options{Out: dir, Backend: be(t)}); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir, be(t))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// TestSpacesLiftSeeds: seed s draws the same picture in z, w and w+, and the
// codes of seeds have about unit spread.
func TestSpacesLiftSeeds(t *testing.T) {
	m := styleModel(t)
	if got := m.Spaces(); !slices.Equal(got, []string{SpaceZ, SpaceW, SpaceWPlus}) {
		t.Fatalf("spaces %v", got)
	}
	want, err := m.GenerateFloats(m.Latent(11), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{SpaceW, SpaceWPlus} {
		v, err := m.InSpace(s)
		if err != nil {
			t.Fatal(err)
		}
		wantDim := m.LatentDim()
		if s == SpaceWPlus {
			wantDim *= m.Arch.Styles()
		}
		if v.Space() != s || v.LatentDim() != wantDim || v.Root() != m {
			t.Fatalf("%s view: space %s, dim %d (want %d)", s, v.Space(), v.LatentDim(), wantDim)
		}
		c := v.Latent(11)
		got, err := v.GenerateFloats(c, 1)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(got, want); d > 1e-5 {
			t.Errorf("%s: seed 11's picture differs from z's by %g", s, d)
		}
		// Codes of many seeds have unit mean square by the frame's scale.
		ss, n := 0.0, 0
		for _, c := range v.Latents(100, 64) {
			for _, x := range c {
				ss += float64(x * x)
				n++
			}
		}
		if rms := math.Sqrt(ss / float64(n)); rms < 0.8 || rms > 1.25 {
			t.Errorf("%s: seeds' codes have RMS %.3f, want about 1", s, rms)
		}
		// DrawLatent lifts a draw of the root's stream.
		r1, r2 := rand.New(rand.NewPCG(3, 4)), rand.New(rand.NewPCG(3, 4))
		code := make([]float32, v.LatentDim())
		v.DrawLatent(r1, code)
		z := make([]float32, m.LatentDim())
		m.DrawLatent(r2, z)
		lifted, err := v.Lift([][]float32{z})
		if err != nil || !slices.Equal(lifted[0], code) {
			t.Errorf("%s: DrawLatent is not the lift of the root's draw (%v)", s, err)
		}
		if back, _ := v.InSpace(SpaceZ); back != m {
			t.Errorf("%s view's InSpace(z) is not the root model", s)
		}
	}
	// A w+ code that repeats one w code draws that w code's picture; moving
	// one style layer's code changes the picture differently from all.
	w, _ := m.InSpace(SpaceW)
	wp, _ := m.InSpace(SpaceWPlus)
	cw := w.Latent(5)
	cwp := slices.Concat(slices.Repeat([][]float32{cw}, m.Arch.Styles())...)
	a, _ := w.GenerateFloats(cw, 1)
	b, _ := wp.GenerateFloats(cwp, 1)
	if d := maxDiff(a, b); d > 1e-6 {
		t.Errorf("a repeated w+ code differs from its w code's picture by %g", d)
	}
	cwp[0] += 3 // the first style layer only
	c, _ := wp.GenerateFloats(cwp, 1)
	if maxDiff(b, c) < 1e-3 {
		t.Error("moving the first style layer's code changed nothing")
	}
}

// TestSpaceSeFaWeights: in w every style affine's weights side by side, in
// w+ block-diagonal, scaled by the frame.
func TestSpaceSeFaWeights(t *testing.T) {
	m := styleModel(t)
	l, s := m.LatentDim(), m.Arch.Styles()
	w, _ := m.InSpace(SpaceW)
	wp, _ := m.InSpace(SpaceWPlus)
	aw, err := w.FirstLayerWeights()
	if err != nil {
		t.Fatal(err)
	}
	ap, err := wp.FirstLayerWeights()
	if err != nil {
		t.Fatal(err)
	}
	if len(aw) != l || len(ap) != s*l || len(aw[0]) != len(ap[0]) {
		t.Fatalf("shapes: w %d×%d, w+ %d×%d; want %d rows and %d rows", len(aw), len(aw[0]), len(ap), len(ap[0]), l, s*l)
	}
	// Summing w+'s row blocks gives w's matrix; each column is fed by one block only.
	for i := 0; i < l; i++ {
		for j := range aw[i] {
			sum, blocks := float32(0), 0
			for b := 0; b < s; b++ {
				if v := ap[b*l+i][j]; v != 0 {
					sum += v
					blocks++
				}
			}
			if blocks > 1 || math.Abs(float64(sum-aw[i][j])) > 1e-6 {
				t.Fatalf("row %d column %d: w+ blocks %d with sum %g, w %g", i, j, blocks, sum, aw[i][j])
			}
		}
	}
	if _, err := w.FirstLayerActivations(w.Latents(1, 2)); err == nil || !strings.Contains(err.Error(), "mode=latent") {
		t.Errorf("GANSpace activations in w: %v, want a refusal naming mode=latent", err)
	}
}

func TestSpaceRefusals(t *testing.T) {
	gan, err := Load(trainedDir(t), be(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gan.InSpace(SpaceW); err == nil || !strings.Contains(err.Error(), "arch dcgan has no mapping network") {
		t.Errorf("w on a dcgan: %v", err)
	}
	if got := gan.Spaces(); !slices.Equal(got, []string{SpaceZ}) {
		t.Errorf("dcgan spaces %v", got)
	}
	if _, err := ParseSpace("q"); err == nil || !strings.Contains(err.Error(), "want z, w or w+") {
		t.Errorf("ParseSpace(q): %v", err)
	}
	if z, err := gan.InSpace(""); err != nil || z != gan {
		t.Errorf("InSpace(\"\"): %v", err)
	}
}
