package generator

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// trainDiscriminator trains cfg into a temporary run and loads its model
// and discriminator.
func trainDiscriminator(t *testing.T, cfg Config) (string, *Model, *Discriminator) {
	t.Helper()
	dir := t.TempDir()
	if _, err := Train(cfg, Options{Out: dir, Backend: be(t)}); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir, be(t))
	if err != nil {
		t.Fatal(err)
	}
	d, err := LoadDiscriminator(m)
	if err != nil {
		t.Fatal(err)
	}
	return dir, m, d
}

// TestDiscriminatorShipsAndDifferentiates: a GAN run writes its
// discriminator with every checkpoint; loaded, its realism loss has the
// gradient finite differences give, for the spectral-norm DCGAN D with a
// minibatch-stddev layer and for the style GAN's residual D.
func TestDiscriminatorShipsAndDifferentiates(t *testing.T) {
	dc := tiny("gan", "faces", 6)
	dc.MBStd = true
	for name, cfg := range map[string]Config{"dcgan": dc, "style": tinyStyle(6)} {
		t.Run(name, func(t *testing.T) {
			_, m, d := trainDiscriminator(t, cfg)
			h, w, c := m.ImageShape()
			n, sz := 4, h*w*c
			r := rand.New(rand.NewPCG(3, 4))
			x := make([]float32, n*sz)
			for i := range x {
				x[i] = float32(r.Float64()*1.6 - 0.8)
			}
			loss, grad, err := d.Realism(x, n)
			if err != nil {
				t.Fatal(err)
			}
			if len(loss) != n || len(grad) != n*sz {
				t.Fatalf("%d losses and %d gradient values for %d images of %d", len(loss), len(grad), n, sz)
			}
			// An image's score is its own: alone, or in another company,
			// it reads the same (the minibatch-stddev layer sees fixed
			// reference images, not the batch).
			alone, _, err := d.Realism(x[:sz], 1)
			if err != nil {
				t.Fatal(err)
			}
			swapped, _, err := d.Realism(append(append([]float32(nil), x[:sz]...), x[2*sz:3*sz]...), 2)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(alone[0]-loss[0]) > 1e-5 || math.Abs(swapped[0]-loss[0]) > 1e-5 {
				t.Errorf("image 0 scores %.6f in a batch of 4, %.6f alone, %.6f beside image 2", loss[0], alone[0], swapped[0])
			}
			// Directional derivative along a ±1 direction that involves
			// every pixel: on a random half the gradient's own sign, so the
			// derivative stands well above float32 noise (along purely
			// random signs the style D's was 0.006, its noise 7e-4), and
			// random signs on the other half.
			v := make([]float32, len(x))
			var analytic float64
			for i := range v {
				v[i] = float32(2*r.IntN(2) - 1)
				if r.IntN(2) == 0 && grad[i] != 0 {
					v[i] = float32(math.Copysign(1, float64(grad[i])))
				}
				analytic += float64(v[i]) * float64(grad[i])
			}
			const eps = 1e-4 // D is sharp: at 1e-3 its kinks bend the difference by 20%
			sum := func(sign float32) float64 {
				y := make([]float32, len(x))
				for i := range y {
					y[i] = x[i] + sign*eps*v[i]
				}
				l, _, err := d.Realism(y, n)
				if err != nil {
					t.Fatal(err)
				}
				var s float64
				for _, e := range l {
					s += e
				}
				return s
			}
			numeric := (sum(1) - sum(-1)) / (2 * eps)
			if rel := math.Abs(numeric-analytic) / math.Max(math.Abs(analytic), 1e-3); rel > 0.05 || analytic == 0 {
				t.Fatalf("directional derivative: analytic %.5g, finite differences %.5g (relative error %.3g)", analytic, numeric, rel)
			}
			t.Logf("directional derivative: analytic %.5g, finite differences %.5g", analytic, numeric)
		})
	}
}

// TestDiscriminatorBadFiles: a model without the file, with a corrupted
// one, and a run whose discriminator is recovered from its train state.
func TestDiscriminatorBadFiles(t *testing.T) {
	dir, m, d := trainDiscriminator(t, tiny("gan", "faces", 4))
	path := filepath.Join(dir, DiscriminatorFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, w, c := m.ImageShape()
	x := make([]float32, h*w*c)
	want, _, err := d.Realism(x, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Realism(x[:10], 1); err == nil {
		t.Error("realism of a short image: no error")
	}

	// Corrupted: the checksum catches it.
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 0xff
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDiscriminator(m); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("corrupted discriminator: %v, want a checksum error", err)
	}

	// A model trained before the file existed: none recorded.
	info, err := ReadInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	info.DiscriminatorSHA256 = ""
	if err := writeInfo(dir, info); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	old, err := Load(dir, be(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDiscriminator(old); !errors.Is(err, ErrNoDiscriminator) {
		t.Errorf("model without a discriminator: %v, want ErrNoDiscriminator", err)
	}

	// Recovered from the train state: the same discriminator.
	if err := ExportDiscriminator(dir); err != nil {
		t.Fatal(err)
	}
	again, err := Load(dir, be(t))
	if err != nil {
		t.Fatal(err)
	}
	d2, err := LoadDiscriminator(again)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := d2.Realism(x, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != want[0] {
		t.Errorf("exported discriminator reads %v, the trainer's %v", got[0], want[0])
	}

	// A VAE has none to export.
	vdir := t.TempDir()
	if _, err := Train(tiny("vae", "faces", 2), Options{Out: vdir, Backend: be(t)}); err != nil {
		t.Fatal(err)
	}
	if err := ExportDiscriminator(vdir); err == nil {
		t.Error("exporting a VAE's discriminator: no error")
	}
	if _, err := os.Stat(filepath.Join(vdir, DiscriminatorFile)); !os.IsNotExist(err) {
		t.Errorf("a VAE run has %s: %v", DiscriminatorFile, err)
	}
}
