package evaluate

import (
	"math"
	"math/rand/v2"
	"testing"
)

func points1D(v ...float64) [][]float64 {
	out := make([][]float64, len(v))
	for i, x := range v {
		out[i] = []float64{x}
	}
	return out
}

// TestPrecisionRecallKnownAnswers: identical sets cover each other, far
// apart sets cover nothing, and a tiny case worked by hand.
func TestPrecisionRecallKnownAnswers(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	a := gaussian(r, 200, 5, 0, 1)
	if p, rc, err := PrecisionRecall(a, a, 3); err != nil || p != 1 || rc != 1 {
		t.Fatalf("identical sets: precision %g recall %g (%v), want 1, 1", p, rc, err)
	}
	far := gaussian(r, 200, 5, 100, 1)
	if p, rc, err := PrecisionRecall(a, far, 3); err != nil || p != 0 || rc != 0 {
		t.Fatalf("disjoint far sets: precision %g recall %g (%v), want 0, 0", p, rc, err)
	}
	// Real {0, 1, 2, 3}, k = 1: every real ball has radius 1, so fake 0.5
	// is inside and fake 10 is not: precision 1/2. The fake balls (k = 1)
	// have radius 9.5 around 0.5 and 10: every real point is inside one.
	p, rc, err := PrecisionRecall(points1D(0, 1, 2, 3), points1D(0.5, 10), 1)
	if err != nil || p != 0.5 || rc != 1 {
		t.Fatalf("hand case: precision %g recall %g (%v), want 0.5, 1", p, rc, err)
	}
	// k = 2 on the same sets: real radii are 1 (for 1, 2) and 2 (for 0, 3),
	// fake 10 is still outside; the fake set has two points, too few for k = 2.
	if _, _, err := PrecisionRecall(points1D(0, 1, 2, 3), points1D(0.5, 10), 2); err == nil {
		t.Fatal("k = 2 with two fake points accepted")
	}
	// A ball's surface is inside: real {0, 2}, k = 1 (radius 2), fake {2, 4}
	// (radius 2): 4 is on the surface of the ball of 2.
	if p, rc, _ := PrecisionRecall(points1D(0, 2), points1D(2, 4), 1); p != 1 || rc != 1 {
		t.Fatalf("surface case: precision %g recall %g, want 1, 1", p, rc)
	}
	if _, _, err := PrecisionRecall(a, [][]float64{{1}, {2}, {3}, {4}}, 3); err == nil {
		t.Fatal("mismatched dimensions accepted")
	}
}

// TestPrecisionRecallBruteForce compares with the definition written out
// directly on small random sets: for every point, all distances, sorted.
func TestPrecisionRecallBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for trial := 0; trial < 5; trial++ {
		real := gaussian(r, 30, 2, 0, 1)
		fake := gaussian(r, 25, 2, 0.7, 1.3)
		for _, k := range []int{1, 3, 5} {
			p, rc, err := PrecisionRecall(real, fake, k)
			if err != nil {
				t.Fatal(err)
			}
			if want := bruteCoverage(fake, real, k); p != want {
				t.Errorf("trial %d k %d: precision %g, brute force %g", trial, k, p, want)
			}
			if want := bruteCoverage(real, fake, k); rc != want {
				t.Errorf("trial %d k %d: recall %g, brute force %g", trial, k, rc, want)
			}
		}
	}
}

// bruteCoverage: the fraction of points within the k-NN radius of some
// point of set, with Euclidean distances (not squared) and a full sort.
func bruteCoverage(points, set [][]float64, k int) float64 {
	dist := func(a, b []float64) float64 { return math.Sqrt(sqDist(a, b)) }
	in := 0
	for _, p := range points {
		for i, c := range set {
			var ds []float64
			for j, o := range set {
				if j != i {
					ds = append(ds, dist(c, o))
				}
			}
			for x := 1; x < len(ds); x++ { // insertion sort: independent of slices.Sort
				for y := x; y > 0 && ds[y] < ds[y-1]; y-- {
					ds[y], ds[y-1] = ds[y-1], ds[y]
				}
			}
			if dist(p, c) <= ds[k-1] {
				in++
				break
			}
		}
	}
	return float64(in) / float64(len(points))
}

func TestWasserstein1KnownAnswers(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	a := make([]float64, 500)
	for i := range a {
		a[i] = r.NormFloat64()
	}
	b := make([]float64, len(a))
	for i := range a {
		b[i] = a[i] + 0.3
	}
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	if w := Wasserstein1(a, b); !near(w, 0.3) {
		t.Errorf("shift by 0.3: W1 %g", w)
	}
	if w := Wasserstein1(a, a); w != 0 {
		t.Errorf("same set: W1 %g", w)
	}
	// {0, 1} vs {0.5}: half the mass moves 0.5 each way.
	if w := Wasserstein1([]float64{0, 1}, []float64{0.5}); !near(w, 0.5) {
		t.Errorf("{0,1} vs {0.5}: W1 %g, want 0.5", w)
	}
	// {0, 0, 1} vs {0, 1, 1}: a third of the mass moves by 1.
	if w := Wasserstein1([]float64{0, 0, 1}, []float64{1, 0, 1}); !near(w, 1.0/3) {
		t.Errorf("ties: W1 %g, want 1/3", w)
	}
}

func TestCircularWasserstein1KnownAnswers(t *testing.T) {
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	r := rand.New(rand.NewPCG(9, 9))
	// A cluster 0.05 wide straddling the cut at 0: a rotation by s (at most
	// 0.45 − 0.05 either way) moves every unit by |s|, wrapped.
	a := make([]float64, 400)
	for i := range a {
		a[i] = 0.98 + 0.05*r.Float64()
	}
	for _, c := range []struct{ shift, want float64 }{{0.1, 0.1}, {0.9, 0.1}, {0.4, 0.4}, {-0.2, 0.2}, {1, 0}} {
		b := make([]float64, len(a))
		for i := range a {
			b[i] = a[i] + c.shift // wrapped by the function
		}
		if w := CircularWasserstein1(a, b); !near(w, c.want) {
			t.Errorf("rotation by %g: circular W1 %g, want %g", c.shift, w, c.want)
		}
	}
	// Across the cut: 0.05 and 0.95 are 0.1 apart on the circle, 0.9 on the line.
	if w := CircularWasserstein1([]float64{0.05}, []float64{0.95}); !near(w, 0.1) {
		t.Errorf("0.05 vs 0.95: %g, want 0.1", w)
	}
	if w := Wasserstein1([]float64{0.05}, []float64{0.95}); !near(w, 0.9) {
		t.Errorf("line 0.05 vs 0.95: %g, want 0.9", w)
	}
	// Half the mass at 0, half at 0.5 versus all at 0.25: every unit moves 0.25.
	if w := CircularWasserstein1([]float64{0, 0.5}, []float64{0.25, 0.25}); !near(w, 0.25) {
		t.Errorf("two points vs their midpoint: %g, want 0.25", w)
	}
	// Within a small arc away from the cut, the circle and the line agree.
	x, y := []float64{0.3, 0.35, 0.4}, []float64{0.32, 0.41, 0.45}
	if wc, wl := CircularWasserstein1(x, y), Wasserstein1(x, y); !near(wc, wl) {
		t.Errorf("small arc: circle %g, line %g", wc, wl)
	}
}
