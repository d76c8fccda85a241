package pseudocase

import (
	"testing"

	"latentedit/evaluate"
	"latentedit/workspace"
)

// TestDiscCount counts disc components of synthetic masks: two discs are
// two, a fragment below MinDiscArea is none, discs touching at a corner
// only are two (4-connectivity).
func TestDiscCount(t *testing.T) {
	const size = 32
	disc := func(m []bool, cx, cy, r int) []bool {
		for y := 0; y < size; y++ {
			for x := 0; x < size; x++ {
				if (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r {
					m[y*size+x] = true
				}
			}
		}
		return m
	}
	blank := func() []bool { return make([]bool, size*size) }
	one := disc(blank(), 8, 8, 4) // 49 px
	two := disc(disc(blank(), 8, 8, 4), 22, 20, 4)
	fragment := disc(disc(blank(), 8, 8, 4), 24, 24, 2) // + 13 px
	corner := blank()                                   // two 6×6 squares meeting at one corner
	for y := 0; y < 12; y++ {
		for x := 0; x < 12; x++ {
			if (x < 6) == (y < 6) {
				corner[(y+4)*size+x+4] = true
			}
		}
	}
	for _, c := range []struct {
		name string
		m    []bool
		want int
	}{{"none", blank(), 0}, {"one", one, 1}, {"two", two, 2}, {"one and a fragment", fragment, 1}, {"corner to corner", corner, 2}} {
		if got := discCount(c.m, size); got != c.want {
			t.Errorf("%s: %d discs, want %d", c.name, got, c.want)
		}
	}
}

// TestDiscArtefactsOnEmbeddedModel: the shipped segmenter finds one disc
// in nearly every rendered retina (its own error rate, 0.7% of 1000 at this
// MinDiscArea; the first segmenter's was 7.8%), and counts are filled for
// both sides.
func TestDiscArtefactsOnEmbeddedModel(t *testing.T) {
	ws, err := workspace.Open("fundus-gan", "")
	if err != nil {
		t.Fatal(err)
	}
	opt := evaluate.QualityOptions{N: 16}
	im, err := evaluate.RenderQualityImages(ws.Model, opt)
	if err != nil {
		t.Fatal(err)
	}
	a, err := MeasureArtefacts(ws, im, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", a)
	sum := func(c [4]int) int { return c[0] + c[1] + c[2] + c[3] }
	if sum(a.SampleCounts) != 16 || sum(a.DataCounts) != 16 || a.Data > 1.0/16 || a.MinArea != MinDiscArea ||
		a.Sample != 1-float64(a.SampleCounts[1])/16 {
		t.Errorf("artefacts %+v: want 16 images a side, at most 1 rendered retina with ≠ 1 disc", a)
	}
	dir, _ := SegmenterDir(ws)
	seg, err := LoadSegmenter(dir, ws.Model.Backend())
	if err != nil {
		t.Fatal(err)
	}
	im.Samples = im.Samples[:10]
	if _, err := DiscArtefacts(seg, im, nil, false); err == nil {
		t.Error("short samples accepted")
	}
}
