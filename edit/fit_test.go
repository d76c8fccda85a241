package edit

import (
	"strings"
	"testing"

	"latentedit/generator"
	"latentedit/models"
)

// TestFitClosedForm fits GANSpace (both modes) and SeFa on the shipped MNIST
// GAN: K orthonormal-ish directions each, named pc/sefa, and bad methods or
// options refused.
func TestFitClosedForm(t *testing.T) {
	be := edTestBackend(t)
	dir, err := models.Extract("mnist-gan", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := generator.Load(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method string
		opt    Options
		prefix string
	}{
		{"ganspace", Options{"mode": "latent"}, "pc "},
		{"ganspace", nil, "pc "},
		{"sefa", nil, "sefa "},
	} {
		e, err := FitClosedForm(m, tc.method, 3, 200, 4, tc.opt)
		if err != nil {
			t.Fatalf("%s %v: %v", tc.method, tc.opt, err)
		}
		if e.K() != 3 || e.Method() != tc.method || !strings.HasPrefix(e.Names()[0], tc.prefix) {
			t.Errorf("%s %v: K %d, method %s, names %q", tc.method, tc.opt, e.K(), e.Method(), e.Names())
		}
		z := generator.Latent(1, m.LatentDim())
		z2, err := One(e, z, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		var d2 float64
		for i := range z {
			d2 += float64(z2[i]-z[i]) * float64(z2[i]-z[i])
		}
		if d2 < 0.99 || d2 > 1.01 { // unit directions: a step of 1 moves z by 1
			t.Errorf("%s: a step of 1 moved z by %g²", tc.method, d2)
		}
	}
	if _, err := FitClosedForm(m, "linear", 3, 200, 4, nil); err == nil {
		t.Error("linear fitted in closed form")
	}
	if _, err := FitClosedForm(m, "ganspace", 3, 200, 4, Options{"mode": "pca"}); err == nil || !strings.Contains(err.Error(), "mode") {
		t.Errorf("mode=pca: %v", err)
	}
}
