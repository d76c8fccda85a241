package mixture

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat"
)

// truth is a known 2-D mixture of three well-separated, differently shaped
// components.
func truth() *Model {
	return &Model{
		Weights: []float64{0.5, 0.3, 0.2},
		Means:   [][]float64{{0, 0}, {6, 1}, {-3, 7}},
		Chol: [][]float64{
			{1, 0, 0.5, 0.6},
			{0.4, 0, -0.3, 1.5},
			{2, 0, 0, 0.3},
		},
	}
}

func draw(m *Model, n int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	d := m.Dim()
	x := make([]float64, n*d)
	eps := make([]float64, d)
	for i := 0; i < n; i++ {
		for j := range eps {
			eps[j] = r.NormFloat64()
		}
		m.Sample(eps, r.Float64(), x[i*d:(i+1)*d])
	}
	return x
}

// TestFitRecoversKnownMixture fits 6000 draws of truth and finds its
// weights, means and covariances again; EM's log-likelihood never falls.
func TestFitRecoversKnownMixture(t *testing.T) {
	want := truth()
	x := draw(want, 6000, 1)
	got, curve, err := Fit(x, 6000, 2, Options{K: 3, Seed: 3, Tol: 1e-8, Reg: 1e-9})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(curve); i++ {
		if curve[i] < curve[i-1]-1e-9 {
			t.Errorf("log-likelihood fell at iteration %d: %.9f → %.9f", i, curve[i-1], curve[i])
		}
	}
	if len(curve) < 2 {
		t.Errorf("EM stopped after %d iterations", len(curve))
	}
	for c := range want.Weights {
		// match by nearest mean
		best, bd := -1, math.Inf(1)
		for g := range got.Weights {
			dx, dy := got.Means[g][0]-want.Means[c][0], got.Means[g][1]-want.Means[c][1]
			if v := dx*dx + dy*dy; v < bd {
				best, bd = g, v
			}
		}
		// Four standard errors of a mean of the component's share of 6000 draws.
		wc := cov(want.Chol[c])
		tol := 4 * math.Sqrt(math.Max(wc[0], wc[3])/(6000*want.Weights[c]))
		if math.Sqrt(bd) > tol {
			t.Errorf("component %d: nearest fitted mean %v is %.3f from %v (tolerance %.3f)", c, got.Means[best], math.Sqrt(bd), want.Means[c], tol)
		}
		if dw := math.Abs(got.Weights[best] - want.Weights[c]); dw > 0.03 {
			t.Errorf("component %d: weight %.3f, want %.3f", c, got.Weights[best], want.Weights[c])
		}
		gc := cov(got.Chol[best])
		for i := range gc {
			if math.Abs(gc[i]-wc[i]) > 0.15*math.Max(1, math.Abs(wc[i])) {
				t.Errorf("component %d: covariance %v, want %v", c, gc, wc)
				break
			}
		}
	}
	// The fitted model explains held-out draws about as well as the truth.
	held := draw(want, 2000, 2)
	if g, w := stat.Mean(got.LogDensity(held, 2000), nil), stat.Mean(want.LogDensity(held, 2000), nil); g < w-0.02 {
		t.Errorf("held-out mean log-density %.4f, truth's %.4f", g, w)
	}
}

func cov(l []float64) []float64 { // 2×2 L Lᵀ
	return []float64{l[0] * l[0], l[0] * l[2], l[2] * l[0], l[2]*l[2] + l[3]*l[3]}
}

// TestSampleMoments checks Sample against the mixture's mean and second
// moment.
func TestSampleMoments(t *testing.T) {
	m := truth()
	n := 200000
	x := draw(m, n, 9)
	var mx, my float64
	for i := 0; i < n; i++ {
		mx += x[2*i]
		my += x[2*i+1]
	}
	mx, my = mx/float64(n), my/float64(n)
	wx, wy := 0.0, 0.0
	for c, w := range m.Weights {
		wx += w * m.Means[c][0]
		wy += w * m.Means[c][1]
	}
	if math.Abs(mx-wx) > 0.03 || math.Abs(my-wy) > 0.03 {
		t.Errorf("sample mean (%.3f, %.3f), want (%.3f, %.3f)", mx, my, wx, wy)
	}
}

// TestLogDensityMatchesPyTorch evaluates the same mixture in PyTorch's
// MixtureSameFamily(Categorical, MultivariateNormal(scale_tril)).
func TestLogDensityMatchesPyTorch(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
		t.Fatalf("Debian's python3-torch is needed (scripts/test.sh installs it): %v", err)
	}
	m := truth()
	x := draw(m, 50, 4)
	in, _ := json.Marshal(map[string]any{"w": m.Weights, "mu": m.Means, "l": [][][]float64{
		{{1, 0}, {0.5, 0.6}}, {{0.4, 0}, {-0.3, 1.5}}, {{2, 0}, {0, 0.3}}}, "x": x})
	script := `
import json, sys, torch
a = json.load(sys.stdin)
D = torch.distributions
mix = D.MixtureSameFamily(D.Categorical(probs=torch.tensor(a["w"], dtype=torch.float64)),
    D.MultivariateNormal(torch.tensor(a["mu"], dtype=torch.float64), scale_tril=torch.tensor(a["l"], dtype=torch.float64)))
x = torch.tensor(a["x"], dtype=torch.float64).reshape(-1, 2)
print(json.dumps(mix.log_prob(x).tolist()))
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var want []float64
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	got := m.LogDensity(x, 50)
	worst := 0.0
	for i := range want {
		worst = math.Max(worst, math.Abs(got[i]-want[i]))
	}
	t.Logf("largest |Δ log p| against PyTorch over 50 points: %.2g", worst)
	if worst > 1e-9 {
		t.Errorf("log densities differ from PyTorch's by up to %g", worst)
	}
}

func TestFitRefusals(t *testing.T) {
	x := draw(truth(), 100, 1)
	nan := append([]float64(nil), x...)
	nan[37] = math.NaN()
	for _, c := range []struct {
		name string
		x    []float64
		n, d int
		o    Options
		want string
	}{
		{"NaN point", nan, 100, 2, Options{K: 2}, "point 18, coordinate 1 is NaN"},
		{"too few points", x, 100, 2, Options{K: 60}, "100 points for 60 components"},
		{"no components", x, 100, 2, Options{K: 0}, "0 components"},
		{"wrong length", x[:7], 100, 2, Options{K: 2}, "7 values for 100 points"},
		{"negative ridge", x, 100, 2, Options{K: 2, Reg: -1}, "ridge -1"},
	} {
		if _, _, err := Fit(c.x, c.n, c.d, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestValidateRefusals(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(m *Model)
		want string
	}{
		{"weights sum", func(m *Model) { m.Weights[0] = 0.9 }, "weights sum to 1.4"},
		{"NaN weight", func(m *Model) { m.Weights[1] = math.NaN() }, "weight 1 is NaN"},
		{"upper triangle", func(m *Model) { m.Chol[2][1] = 0.1 }, "above the diagonal"},
		{"zero diagonal", func(m *Model) { m.Chol[1][3] = 0 }, "diagonal 1 is 0"},
		{"Inf mean", func(m *Model) { m.Means[0][1] = math.Inf(1) }, "mean 1 is +Inf"},
		{"short mean", func(m *Model) { m.Means[2] = m.Means[2][:1] }, "component 2 has a mean of 1"},
		{"counts", func(m *Model) { m.Chol = m.Chol[:2] }, "3 weights, 3 means, 2 covariance factors"},
	} {
		m := truth()
		if err := m.Validate(2); err != nil {
			t.Fatal(err)
		}
		c.edit(m)
		if err := m.Validate(2); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}
