package edit

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"latentedit/engine"
)

// cfBackend is shared by the closed-form tests.
var cfBackendValue backends.Backend

func cfBackend(t testing.TB) backends.Backend {
	t.Helper()
	if cfBackendValue == nil {
		b, err := engine.NewBackend("")
		if err != nil {
			t.Fatal(err)
		}
		cfBackendValue = b
	}
	return cfBackendValue
}

func cfGauss(r *rand.Rand, n, d int) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		out[i] = make([]float32, d)
		for j := range out[i] {
			out[i][j] = float32(r.NormFloat64())
		}
	}
	return out
}

// cfOrthonormalCols returns k random orthonormal vectors of dimension d.
func cfOrthonormalCols(r *rand.Rand, d, k int) [][]float64 {
	vs := make([][]float64, k)
	for j := range vs {
		vs[j] = make([]float64, d)
		for i := range vs[j] {
			vs[j][i] = r.NormFloat64()
		}
	}
	b := ifgOrthonormal(vs)
	if len(b) != k {
		panic("degenerate random basis")
	}
	return b
}

func cfCos(a []float32, b []float64) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * b[i]
		aa += float64(a[i]) * float64(a[i])
		bb += b[i] * b[i]
	}
	return ab / math.Sqrt(aa*bb)
}

func cfF64(a []float32) []float64 {
	out := make([]float64, len(a))
	for i, v := range a {
		out[i] = float64(v)
	}
	return out
}

func cfDirections(t *testing.T, l *Linear) [][]float32 {
	t.Helper()
	dirs, err := l.Directions()
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// cfRoundTrip saves and loads l and checks the directions, names and
// method survive.
func cfRoundTrip(t *testing.T, l *Linear) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ed")
	if err := Save(dir, l, map[string]any{"test": true}); err != nil {
		t.Fatal(err)
	}
	e, err := Load(dir, SpaceZ, l.LatentDim(), cfBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	got, ok := e.(*Linear)
	if !ok {
		t.Fatalf("loaded a %T", e)
	}
	if got.Method() != l.Method() || strings.Join(got.Names(), ";") != strings.Join(l.Names(), ";") {
		t.Fatalf("loaded %s %v, saved %s %v", got.Method(), got.Names(), l.Method(), l.Names())
	}
	a, b := cfDirections(t, l), cfDirections(t, got)
	for j := range a {
		for i := range a[j] {
			if math.Abs(float64(a[j][i]-b[j][i])) > 1e-6 {
				t.Fatalf("direction %d[%d]: saved %v, loaded %v", j, i, a[j][i], b[j][i])
			}
		}
	}
	for key := range l.Params() {
		if _, ok := got.Params()[key]; !ok {
			t.Errorf("param %q lost in the round trip", key)
		}
	}
}

func cfWantErr(t *testing.T, err error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", substr)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not contain %q", err, substr)
	}
}

func TestGANSpaceLatentDominantAxis(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	const n, d = 2000, 16
	u := cfOrthonormalCols(r, d, 1)[0]
	z := cfGauss(r, n, d)
	for i := range z {
		g := r.NormFloat64()
		for j := range z[i] {
			z[i][j] += float32(5 * g * u[j])
		}
	}
	l, err := NewGANSpace(z, 3, cfBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	dirs := cfDirections(t, l)
	c := cfCos(dirs[0], u)
	t.Logf("pc 0 |cos| with the dominant axis: %.6f", math.Abs(c))
	if math.Abs(c) < 0.99 {
		t.Fatalf("pc 0 |cos| = %v", c)
	}
	ratio := l.Params()["explained_variance_ratio"].([]float64)
	if !(ratio[0] > 0.5 && ratio[0] > ratio[1] && ratio[1] >= ratio[2]) {
		t.Fatalf("explained variance ratios %v", ratio)
	}
	if l.Params()["mode"] != "latent" || l.Names()[0] != "pc 0" || l.Method() != "ganspace" {
		t.Fatalf("mode %v names %v method %s", l.Params()["mode"], l.Names(), l.Method())
	}
	for j, v := range dirs {
		big := 0
		for i := range v {
			if math.Abs(float64(v[i])) > math.Abs(float64(v[big])) {
				big = i
			}
		}
		if v[big] < 0 {
			t.Fatalf("pc %d: largest component %d is negative", j, big)
		}
		for k := 0; k < j; k++ {
			if c := cfCos(v, cfF64(dirs[k])); math.Abs(c) > 1e-4 {
				t.Fatalf("pc %d and %d not orthogonal: %v", j, k, c)
			}
		}
	}
	// The fit is deterministic.
	again, err := NewGANSpace(z, 3, cfBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	for j, v := range cfDirections(t, again) {
		for i := range v {
			if v[i] != dirs[j][i] {
				t.Fatal("two fits of the same data differ")
			}
		}
	}
	cfRoundTrip(t, l)
}

// ganspaceActivationsCase builds act = z·M for M = V diag(σ) Uᵀ (d × F): the
// top activation components are U's columns, carried back to V's.
func ganspaceActivationsCase(t *testing.T, n, d, f int) {
	r := rand.New(rand.NewPCG(2, uint64(f)))
	sigma := []float64{10, 5, 2.5, 1.2, 0.8, 0.6, 0.5, 0.4}
	v := cfOrthonormalCols(r, d, d)
	u := cfOrthonormalCols(r, f, d)
	z := cfGauss(r, n, d)
	act := make([][]float32, n)
	for i := range act {
		act[i] = make([]float32, f)
		for c := 0; c < f; c++ {
			s := 0.0
			for j := 0; j < d; j++ {
				s += sigma[j] * cfDot(cfF64(z[i]), v[j]) * u[j][c]
			}
			act[i][c] = float32(s + 3) // an offset the PCA must remove
		}
	}
	const k = 3
	l, err := NewGANSpaceActivations(z, act, k, cfBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	dirs := cfDirections(t, l)
	for j := 0; j < k; j++ {
		c := cfCos(dirs[j], v[j])
		t.Logf("n=%d F=%d exactMax=%d: pc %d |cos| with the expected latent axis: %.6f", n, f, ganspaceExactMax, j, math.Abs(c))
		if math.Abs(c) < 0.99 {
			t.Fatalf("pc %d |cos| = %v", j, c)
		}
	}
	p := l.Params()
	if p["mode"] != "activations" {
		t.Fatalf("mode %v", p["mode"])
	}
	for j, r2 := range p["regression_r2"].([]float64) {
		if r2 < 0.999 {
			t.Fatalf("pc %d: regression R² %v for a linear layer", j, r2)
		}
	}
	ratio := p["explained_variance_ratio"].([]float64)
	if !(ratio[0] > ratio[1] && ratio[1] > ratio[2] && ratio[0] > 0.5) {
		t.Fatalf("explained variance ratios %v", ratio)
	}
}

func TestGANSpaceActivations(t *testing.T) {
	t.Run("covariance", func(t *testing.T) { ganspaceActivationsCase(t, 1000, 8, 40) })
	t.Run("gram", func(t *testing.T) { ganspaceActivationsCase(t, 120, 8, 300) })
	t.Run("randomized", func(t *testing.T) {
		defer func(v int) { ganspaceExactMax = v }(ganspaceExactMax)
		ganspaceExactMax = 20
		ganspaceActivationsCase(t, 300, 8, 200)
	})
}

// TestGANSpaceActivationsRandomizedMatchesExact: on a decaying spectrum through a
// nonlinear layer the randomized PCA gives the exact directions.
func TestGANSpaceActivationsRandomizedMatchesExact(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 16))
	const n, d, f, k = 300, 10, 200, 5
	z := cfGauss(r, n, d)
	m := cfGauss(r, d, f)
	act := make([][]float32, n)
	for i := range act {
		act[i] = make([]float32, f)
		for c := range act[i] {
			s := 0.0
			for j := 0; j < d; j++ {
				s += math.Pow(0.7, float64(j)) * float64(z[i][j]*m[j][c])
			}
			act[i][c] = float32(max(s, 0.2*s))
		}
	}
	fit := func(exactMax int) [][]float32 {
		defer func(v int) { ganspaceExactMax = v }(ganspaceExactMax)
		ganspaceExactMax = exactMax
		l, err := NewGANSpaceActivations(z, act, k, cfBackend(t))
		if err != nil {
			t.Fatal(err)
		}
		return cfDirections(t, l)
	}
	exact, approx := fit(1000), fit(20)
	for j := range exact {
		c := cfCos(approx[j], cfF64(exact[j]))
		t.Logf("pc %d: cos randomized vs exact %.8f", j, c)
		if c < 0.9999 {
			t.Fatalf("pc %d: cos %v", j, c)
		}
	}
}

func TestGANSpaceActivationsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	z := cfGauss(r, 100, 6)
	act := make([][]float32, len(z))
	for i, zi := range z {
		act[i] = []float32{zi[0] + 2*zi[1], float32(math.Tanh(float64(zi[2]))), zi[3] * zi[3], 3 * zi[4]}
	}
	l, err := NewGANSpaceActivations(z, act, 2, cfBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	cfRoundTrip(t, l)
}

func TestGANSpaceErrors(t *testing.T) {
	be := cfBackend(t)
	r := rand.New(rand.NewPCG(4, 4))
	z := cfGauss(r, 50, 5)
	_, err := NewGANSpace(nil, 1, be)
	cfWantErr(t, err, "z is empty")
	_, err = NewGANSpace(z, 6, be)
	cfWantErr(t, err, "k = 6 must be in [1, 5]")
	_, err = NewGANSpace(z, 0, be)
	cfWantErr(t, err, "k = 0")
	_, err = NewGANSpace(z, 2, nil)
	cfWantErr(t, err, "no backend")
	_, err = NewGANSpace(z[:1], 1, be)
	cfWantErr(t, err, "need at least 2")
	ragged := append(append([][]float32(nil), z[:3]...), []float32{1, 2})
	_, err = NewGANSpace(ragged, 1, be)
	cfWantErr(t, err, "row 3 has 2 values")
	bad := cfGauss(r, 50, 5)
	bad[7][2] = float32(math.NaN())
	_, err = NewGANSpace(bad, 1, be)
	cfWantErr(t, err, "z[7][2] is NaN")
	_, err = NewGANSpace(z[:3], 3, be) // 3 centred samples span 2 dimensions
	cfWantErr(t, err, "span only 2 dimensions")

	act := cfGauss(r, 50, 4)
	_, err = NewGANSpaceActivations(z, act[:49], 1, be)
	cfWantErr(t, err, "50 latents but 49 activation rows")
	_, err = NewGANSpaceActivations(z, act, 5, be)
	cfWantErr(t, err, "exceeds the 4 activation features")
	_, err = NewGANSpaceActivations(z, nil, 1, be)
	cfWantErr(t, err, "act is empty")
	act[3][1] = float32(math.Inf(1))
	_, err = NewGANSpaceActivations(z, act, 1, be)
	cfWantErr(t, err, "act[3][1] is +Inf")
}
