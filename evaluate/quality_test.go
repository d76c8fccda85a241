package evaluate

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"latentedit/engine"
	"latentedit/generator"
	"latentedit/models"
)

func uniform(r *rand.Rand, n int, lo, hi float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float64()
	}
	return v
}

// TestModeBins: hue bins wrap, skin-tone fifths follow the data, counts
// round and clamp, and the lesion flags use the renderer's thresholds.
func TestModeBins(t *testing.T) {
	bin := func(name string, data []float64, group string) binning {
		for _, b := range binnings(name, data) {
			if b.group == group {
				return b
			}
		}
		t.Fatalf("%s has no %q bins", name, group)
		return binning{}
	}
	hue := bin("background", nil, "background hue")
	for _, c := range []struct {
		v    float64
		want int
	}{{0, 0}, {0.124, 0}, {0.125, 1}, {0.999, 7}, {1, 0}, {-0.01, 7}, {1.3, 2}} {
		if got := hue.bin(c.v); got != c.want {
			t.Errorf("hue %g in bin %d, want %d", c.v, got, c.want)
		}
	}
	if len(hue.labels) != 8 || hue.labels[1] != "0.125–0.250" {
		t.Errorf("hue labels %q", hue.labels)
	}
	r := rand.New(rand.NewPCG(11, 11))
	data := uniform(r, 5000, 0.1, 0.6)
	skin := bin("skin_tone", data, "skin tone (data fifths)")
	for i, rate := range rates(skin, data) {
		if math.Abs(rate-0.2) > 0.002 {
			t.Errorf("data fifth %d holds %.3f of the data", i, rate)
		}
	}
	if skin.bin(0) != 0 || skin.bin(1) != 4 {
		t.Errorf("values beyond the data land in bins %d and %d, want 0 and 4", skin.bin(0), skin.bin(1))
	}
	count := bin("haemorrhages", nil, "haemorrhage count")
	for _, c := range []struct {
		v    float64
		want int
	}{{-0.4, 0}, {0.49, 0}, {0.5, 1}, {2.6, 3}, {9, 6}} {
		if got := count.bin(c.v); got != c.want {
			t.Errorf("count %g in bin %d, want %d", c.v, got, c.want)
		}
	}
	for _, c := range []struct {
		factor, group string
		v             float64
		in            bool
	}{
		{"detachment", "detachment present", 0.1, false},
		{"detachment", "detachment present", 0.11, true},
		{"haemorrhages", "haemorrhages present", 0.5, true},
		{"cup_to_disc", "glaucomatous cup", 0.59, false},
		{"cup_to_disc", "glaucomatous cup", 0.6, true},
	} {
		if got := bin(c.factor, nil, c.group).bin(c.v) == 0; got != c.in {
			t.Errorf("%s %g present: %v, want %v", c.factor, c.v, got, c.in)
		}
	}
	digits := bin("label", []float64{0, 3, 9, 2}, "class")
	if len(digits.labels) != 10 || digits.bin(7) != 7 {
		t.Errorf("classes %q", digits.labels)
	}
	if binnings("smile", nil) != nil {
		t.Error("smile has mode bins")
	}
}

// TestModesAndFactors: rates, relative differences and W1 of a sample set
// missing a hue range, against data and labels.
func TestModesAndFactors(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 13))
	data := uniform(r, 4000, 0, 1)
	sample := uniform(r, 4000, 0, 0.5) // half the hues never appear
	ms := modes("background", sample, data, data)
	if len(ms) != 8 {
		t.Fatalf("%d background modes", len(ms))
	}
	for i, m := range ms {
		want := 0.25 // the first four bins get twice their share
		if i >= 4 {
			want = 0
		}
		if math.Abs(m.Sample-want) > 0.03 || math.Abs(m.Data-0.125) > 0.02 || m.Truth == nil || *m.Truth != m.Data {
			t.Errorf("bin %d: sample %.3f data %.3f truth %v", i, m.Sample, m.Data, m.Truth)
		}
		if m.RelDiff == nil || math.Abs(*m.RelDiff-(m.Sample-m.Data)/m.Data) > 1e-12 {
			t.Errorf("bin %d: relative difference %v", i, m.RelDiff)
		}
	}
	if m := modes("cup_to_disc", []float64{0.7}, []float64{0.3, 0.4}, nil)[0]; m.RelDiff != nil || m.Truth != nil || m.Sample != 1 {
		t.Errorf("a bin empty in the data: %+v, want no relative difference", m)
	}
	// Hues squeezed into half the circle (W1 = 1/8 of a turn, 0.43
	// spreads, by the uniform-to-uniform plan) must show, while the second
	// real set's W1 stays near 0.
	fq := compareFactor("background", sample, data, uniform(r, 4000, 0, 1), data)
	if fq.Spread != 1/math.Sqrt(12) || math.Abs(fq.W1-0.125*math.Sqrt(12)) > 0.03 || fq.W1Real > 0.1 || fq.W1Judge == nil || *fq.W1Judge != 0 {
		t.Errorf("background: %+v", fq)
	}
	// A linear factor shifted by one data standard deviation: W1 = 1 spread.
	lin := make([]float64, len(data))
	for i, v := range data {
		lin[i] = v + stdOf(data)
	}
	if fq := compareFactor("smile", lin, data, data, nil); math.Abs(fq.W1-1) > 1e-9 || fq.W1Real != 0 || fq.W1Judge != nil {
		t.Errorf("smile shifted by a spread: %+v", fq)
	}
}

// goodFaces is a faces GAN measurement that meets every target.
func goodFaces() *Quality {
	q := &Quality{Dataset: "faces", Kind: "gan", Frechet: 0.2, FrechetReal: 0.1, FrechetRatio: 2, Precision: 0.85, Recall: 0.82}
	for _, f := range []string{"smile", "background"} {
		q.Factors = append(q.Factors, FactorQuality{Name: f, W1: 0.1})
	}
	q.Modes = []Mode{
		{Group: "background hue", Bin: "a", Data: 0.2, Sample: 0.22, RelDiff: ptr(0.1)},
		{Group: "background hue", Bin: "b", Data: 0.02, Sample: 0.1, RelDiff: ptr(4)}, // under 4% of the data: not checked
		{Group: "hair hue", Bin: "a", Data: 0.2, Sample: 0.02, RelDiff: ptr(-0.9)},    // reported, not a target
	}
	return q
}

func TestCheckTargets(t *testing.T) {
	q := goodFaces()
	q.CheckTargets()
	if !q.Pass || len(q.Checks) != 6 {
		t.Fatalf("good faces GAN: pass %v, %d checks %+v; want pass, 6 checks", q.Pass, len(q.Checks), q.Checks)
	}
	failing := map[string]func(*Quality){
		"Fréchet":            func(q *Quality) { q.FrechetRatio = 3.5 },
		"recall":             func(q *Quality) { q.Recall = 0.5 },
		"W1 smile":           func(q *Quality) { q.Factors[0].W1 = 0.2 },
		"background hue a: ": func(q *Quality) { q.Modes[0].RelDiff = ptr(-0.3) },
	}
	for target, spoil := range failing {
		q := goodFaces()
		spoil(q)
		q.CheckTargets()
		var failed []string
		for _, c := range q.Checks {
			if !c.Pass {
				failed = append(failed, c.Target)
			}
		}
		if q.Pass || len(failed) != 1 || !strings.HasPrefix(failed[0], target) {
			t.Errorf("spoiled %s: pass %v, failed %q", target, q.Pass, failed)
		}
	}
	// Fundus: an unmeasured artefact rate fails with no value.
	f := &Quality{Dataset: "fundus", Kind: "gan", FrechetRatio: 1.5, Modes: []Mode{
		{Group: "detachment present", Data: 0.4, Sample: 0.35, RelDiff: ptr(-0.125)},
		{Group: "haemorrhages present", Data: 0.5, Sample: 0.5, RelDiff: ptr(0)},
		{Group: "glaucomatous cup", Data: 0.33, Sample: 0.2, RelDiff: ptr(-0.4)},
		{Group: "haemorrhage count", Bin: "6", Data: 0.05, Sample: 0, RelDiff: ptr(-1)},
	}}
	f.Modes[1].Truth = ptr(0.3) // the judge reads 0.5 of the real images as having haemorrhages, their labels 0.3
	f.Modes[0].Truth = ptr(0.42)
	f.CheckTargets()
	if f.Pass || len(f.Checks) != 5 || f.Checks[2].Pass || f.Checks[3].Value != nil || f.Checks[3].Pass {
		t.Errorf("fundus without artefacts: %+v", f.Checks)
	}
	if f.Checks[0].Note != "" || !strings.Contains(f.Checks[1].Note, "50.0%") || !f.Checks[1].Pass {
		t.Errorf("judge notes: %q, %q", f.Checks[0].Note, f.Checks[1].Note)
	}
	f.Modes[2].RelDiff = ptr(0.1)
	f.Artefacts = &Artefacts{Sample: 0.01, Data: 0.05}
	if f.CheckTargets(); !f.Pass || !strings.Contains(f.Checks[3].Note, "5.0% of real retinas") {
		t.Errorf("fundus within every target: %+v", f.Checks)
	}
	// MNIST: every digit between 7% and 13%.
	m := &Quality{Dataset: "mnist", Kind: "gan"}
	for d := 0; d < 10; d++ {
		m.Modes = append(m.Modes, Mode{Group: "class", Bin: string(rune('0' + d)), Sample: 0.1})
	}
	if m.CheckTargets(); !m.Pass || len(m.Checks) != 10 {
		t.Errorf("uniform digits: %+v", m.Checks)
	}
	m.Modes[4].Sample = 0.05
	if m.CheckTargets(); m.Pass || m.Checks[4].Pass {
		t.Errorf("a rare 4: %+v", m.Checks[4])
	}
	v := &Quality{Dataset: "faces", Kind: "vae", FrechetRatio: 4.5}
	if v.CheckTargets(); !v.Pass || len(v.Checks) != 1 {
		t.Errorf("faces VAE at 4.5×: %+v", v.Checks)
	}
	other := &Quality{Dataset: "fashion-mnist", Kind: "gan"}
	if other.CheckTargets(); other.Pass || len(other.Checks) != 0 {
		t.Errorf("a model without targets passes: %+v", other)
	}
}

// TestMeasureQualityOnFacesGAN measures the embedded faces GAN with its
// shipped oracle on a few images: every field is there and finite, the
// second real set sits closer to the data than the samples in Fréchet
// distance, and the judge's reading of the data is near its labels.
func TestMeasureQualityOnFacesGAN(t *testing.T) {
	be, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := models.Extract("faces-gan", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := generator.Load(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	o, err := LoadOracle(filepath.Join(dir, OracleDir), be)
	if err != nil {
		t.Fatal(err)
	}
	opt := QualityOptions{N: 48}
	im, err := RenderQualityImages(m, opt)
	if err != nil {
		t.Fatal(err)
	}
	q, err := MeasureQuality(m, o, im, opt)
	if err != nil {
		t.Fatal(err)
	}
	if q.N != 48 || q.K != 3 || q.Judge.Kind != "oracle" || q.Judge.Size != 32 || len(q.Factors) != 10 || len(q.Modes) != 8+8+5 {
		t.Fatalf("quality %+v", q)
	}
	if !(q.Frechet > q.FrechetReal) || q.FrechetRatio != q.Frechet/q.FrechetReal || q.Precision < 0 || q.Precision > 1 || q.RecallReal <= 0 {
		t.Errorf("Fréchet %g vs real %g (ratio %g), precision %g, real recall %g", q.Frechet, q.FrechetReal, q.FrechetRatio, q.Precision, q.RecallReal)
	}
	for _, f := range q.Factors {
		if f.W1Judge == nil || *f.W1Judge > 0.3 || math.IsNaN(f.W1) {
			t.Errorf("%s: W1 %g, judge vs truth %v", f.Name, f.W1, f.W1Judge)
		}
	}
	if q.ReconstructionPSNR != nil || q.Artefacts != nil || len(q.Checks) == 0 {
		t.Errorf("GAN: psnr %v artefacts %v, %d checks", q.ReconstructionPSNR, q.Artefacts, len(q.Checks))
	}
	// Rendering in quanta gives the pixels of one chunked call.
	one, err := m.GenerateChunked(generator.Latents(5150, 48, m.LatentDim()), ReadChunk)
	if err != nil || !slices.Equal(one, im.Samples) {
		t.Errorf("samples differ from one GenerateChunked call (%v)", err)
	}
}
