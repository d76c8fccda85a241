package edit

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
)

// batchCases are the editors the batch tests run: every implementation of
// EditBatch (the fitted methods are Linear editors with fixed directions).
var batchCases = []storeCase{
	{"linear", "linear", nil},
	{"linear-orthonormal", "linear", Options{"orthonormal": true}},
	{"warped", "warped", nil},
	{"warped-single-step", "warped", Options{"train_substeps": 1, "step": 0.25}},
	{"curvilinear-coupling", "curvilinear", Options{"hidden": 32}},
	{"curvilinear-ode", "curvilinear", Options{"flow": "ode", "hidden": 32, "ode_steps": 4}},
	{"potential", "potential", Options{"hidden": 16}},
}

// randomSteps is n steps with random directions and amounts in [−8, 8] (so
// warped edits need up to 16 sub-steps, more than its graph unrolls), one
// of them 0.
func randomSteps(r *rand.Rand, n, k int) []Step {
	steps := make([]Step, n)
	for i := range steps {
		steps[i] = Step{r.IntN(k), float32(16*r.Float64() - 8)}
	}
	steps[n/2].T = 0
	return steps
}

// TestEditBatchMatchesOne: a batch gives each latent what One gives it
// alone, and the same latent edited alone or among others — at any place of
// any chunk — gives the same bits: results never depend on the call.
func TestEditBatchMatchesOne(t *testing.T) {
	const k, d, n = 6, 64, 2*editChunk + 5
	for _, tc := range batchCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEditor(t, tc.method, k, d, tc.opt)
			r := rand.New(rand.NewPCG(31, 32))
			zs := make([][]float32, n)
			for i := range zs {
				zs[i] = randLatent(r, d)
			}
			steps := randomSteps(r, n, k)
			batch, err := e.EditBatch(zs, steps)
			if err != nil {
				t.Fatal(err)
			}
			if len(batch) != n {
				t.Fatalf("%d results for %d latents", len(batch), n)
			}
			worst := 0.0
			for i, z := range zs {
				one, err := One(e, z, steps[i].K, steps[i].T)
				if err != nil {
					t.Fatal(err)
				}
				if diff := dist32(one, batch[i]); diff != 0 {
					t.Errorf("latent %d (%v): alone and in a batch of %d differ by %.3g", i, steps[i], n, diff)
				}
				worst = math.Max(worst, dist32(z, batch[i]))
			}
			if worst == 0 {
				t.Error("no latent moved")
			}
			// The last latent of the batch again, first in a smaller call
			// with other latents and steps after it.
			others := append([][]float32{zs[n-1]}, zs[:7]...)
			otherSteps := append([]Step{steps[n-1]}, randomSteps(r, 7, k)...)
			again, err := e.EditBatch(others, otherSteps)
			if err != nil {
				t.Fatal(err)
			}
			if diff := dist32(again[0], batch[n-1]); diff != 0 {
				t.Errorf("latent %d gave a result differing by %.3g among other latents", n-1, diff)
			}
			for i, z := range zs {
				if dist32(z, zs[i]) != 0 {
					t.Fatalf("EditBatch modified latent %d", i)
				}
			}
		})
	}
}

// TestApplyBatch: Apply over latents with sequences of different lengths
// (one empty) gives each latent what ApplyOne gives it alone.
func TestApplyBatch(t *testing.T) {
	const k, d = 5, 64
	for _, tc := range batchCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEditor(t, tc.method, k, d, tc.opt)
			r := rand.New(rand.NewPCG(41, 42))
			var zs [][]float32
			var seqs [][]Step
			for i := range 20 {
				zs = append(zs, randLatent(r, d))
				seqs = append(seqs, randomSteps(r, 1+i%4, k))
			}
			seqs[3] = nil
			paths, err := Apply(e, zs, seqs)
			if err != nil {
				t.Fatal(err)
			}
			for i, z := range zs {
				if len(paths[i]) != len(seqs[i]) {
					t.Fatalf("latent %d: %d results for %d steps", i, len(paths[i]), len(seqs[i]))
				}
				one, err := ApplyOne(e, z, seqs[i])
				if err != nil {
					t.Fatal(err)
				}
				for j := range one {
					if diff := dist32(one[j], paths[i][j]); diff != 0 {
						t.Errorf("latent %d step %d: alone and in a batch differ by %.3g", i, j, diff)
					}
				}
			}
		})
	}
}

// TestEditBatchRejects: mismatched lengths and a bad row anywhere refuse the
// whole call, naming the row.
func TestEditBatchRejects(t *testing.T) {
	const k, d = 3, 8
	for _, method := range []string{"linear", "warped", "curvilinear"} {
		e := newTestEditor(t, method, k, d, nil)
		zs := [][]float32{make([]float32, d), make([]float32, d), make([]float32, d)}
		if _, err := e.EditBatch(zs, []Step{{0, 1}}); err == nil {
			t.Errorf("%s: accepted 1 step for 3 latents", method)
		}
		if _, err := e.EditBatch(zs, []Step{{0, 1}, {k, 1}, {0, 1}}); err == nil || !containsAll(err.Error(), "latent 1", "direction 3") {
			t.Errorf("%s: direction K in row 1: %v", method, err)
		}
		if _, err := Apply(e, zs, [][]Step{{{0, 1}}, {{1, 1}, {0, float32(math.NaN())}}, nil}); err == nil || !containsAll(err.Error(), "latent 1", "step 1") {
			t.Errorf("%s: NaN in step 1 of latent 1: %v", method, err)
		}
		if out, err := e.EditBatch(nil, nil); err != nil || len(out) != 0 {
			t.Errorf("%s: an empty batch gave %d latents, %v", method, len(out), err)
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// TestLinearDirectionsFollowWeights: the cached directions are recomputed
// when the weights change, whether a graph updates them (as discover's
// training step does) or they are set.
func TestLinearDirectionsFollowWeights(t *testing.T) {
	const k, d = 3, 8
	for _, opt := range []Options{nil, {"orthonormal": true}} {
		e := newTestEditor(t, "linear", k, d, opt).(*Linear)
		z := make([]float32, d)
		before, err := One(e, z, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		// A training-like update of every editor variable in a graph.
		exec, err := context.NewExec(edTestBackend(t), e.Context(), func(ctx *context.Context, g *graph.Graph) *graph.Node {
			for _, v := range engine.Variables(ctx, Scope) {
				v.SetValueGraph(graph.AddScalar(graph.MulScalar(v.ValueGraph(g), 1.5), 0.1))
			}
			return graph.ScalarZero(g, dtypes.Float32)
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := exec.Exec(); err != nil {
			t.Fatal(err)
		}
		after, err := One(e, z, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if dist32(before, after) < 1e-3 {
			t.Errorf("%v: an update of the weights left the direction unchanged", opt)
		}
		dirs, err := e.Directions()
		if err != nil {
			t.Fatal(err)
		}
		if diff := dist32(after, dirs[1]); diff != 0 {
			t.Errorf("%v: edit and Directions differ by %.3g", opt, diff)
		}
		if opt == nil {
			// Set directly: direction 1 becomes the first axis.
			a := make([]float32, d*k)
			for i := range a {
				a[i] = 1
			}
			for i := range d {
				a[i*k+1] = 0
			}
			a[1] = 2
			v := e.Context().GetVariableByScopeAndName(Scope+"/linear", "A")
			if err := v.SetValue(tensors.FromFlatDataAndDimensions(a, d, k)); err != nil {
				t.Fatal(err)
			}
			got, err := One(e, z, 1, 1)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float32, d)
			want[0] = 1
			if dist32(got, want) > 1e-6 {
				t.Errorf("after SetValue: edit %v, want %v", got, want)
			}
		}
	}
}

// TestWarpedEditIsTheWalk: the edit graph walks ⌈|t|/step⌉ equal unit-
// gradient sub-steps of the RBF field, checked against the formula written
// out on the host in float64, for edits longer than the graph unrolls. Both
// walk in float64, so they differ by the rounding of the result to float32
// (≤ 1e-6·‖z‖, measured 0: the same bits; the float32 walk of before
// needed 1e-5).
func TestWarpedEditIsTheWalk(t *testing.T) {
	const k, d = 3, 16
	w := newTestWarped(t, k, d, Options{"dipoles": 4}, 5)
	sv, gamma, err := fieldValues(t, w)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(51, 52))
	worst := 0.0
	for _, tt := range []float32{0.3, -2.2, 6, 13.7, -25} {
		z := randLatent(r, d)
		kk := r.IntN(k)
		got, err := One(w, z, kk, tt)
		if err != nil {
			t.Fatal(err)
		}
		want := hostWalk(z, sv[kk], gamma[kk], float64(tt), w.step)
		diff := dist32(got, want)
		if !(diff <= 1e-6*norm32(z)) {
			t.Errorf("t = %v: graph walk and host walk differ by %.3g", tt, diff)
		}
		worst = max(worst, diff/norm32(z))
	}
	t.Logf("graph walk vs host walk (both float64): worst difference %.2g·‖z‖", worst)
}

// hostWalk is the walk of TestWarpedEditIsTheWalk, written out.
func hostWalk(z32 []float32, sv, gamma []float64, t, step float64) []float32 {
	d, m := len(z32), len(gamma)
	z := make([]float64, d)
	for i, v := range z32 {
		z[i] = float64(v)
	}
	n := math.Ceil(math.Abs(t) / step)
	for range int(n) {
		grad := make([]float64, d)
		for i := range m {
			s := sv[i*d : (i+1)*d]
			sq := 0.0
			for j := range z {
				sq += (z[j] - s[j]) * (z[j] - s[j])
			}
			alpha := 1.0
			if i >= m/2 {
				alpha = -1
			}
			c := -2 * gamma[i] * alpha * math.Exp(-gamma[i]*sq)
			for j := range z {
				grad[j] += c * (z[j] - s[j])
			}
		}
		norm := 0.0
		for _, g := range grad {
			norm += g * g
		}
		norm = math.Sqrt(norm + 1e-16)
		for j := range z {
			z[j] += t / n * grad[j] / norm
		}
	}
	out := make([]float32, d)
	for i, v := range z {
		out[i] = float32(v)
	}
	return out
}

// BenchmarkEditBatch: 32 edits as one batch against 32 single edits, for
// the two graph editors at the shipped size (K = 8, d = 64, default
// options).
func BenchmarkEditBatch(b *testing.B) {
	const k, d, n = 8, 64, 32
	for _, method := range []string{"curvilinear", "warped"} {
		e := newTestEditor(b, method, k, d, nil)
		r := rand.New(rand.NewPCG(61, 62))
		zs := make([][]float32, n)
		steps := make([]Step, n)
		for i := range zs {
			zs[i] = randLatent(r, d)
			steps[i] = Step{r.IntN(k), float32(6*r.Float64() - 3)}
		}
		if _, err := e.EditBatch(zs, steps); err != nil { // builds the graph
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%s/batch-%d", method, n), func(b *testing.B) {
			for b.Loop() {
				if _, err := e.EditBatch(zs, steps); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%s/single-%d", method, n), func(b *testing.B) {
			for b.Loop() {
				for i, z := range zs {
					if _, err := One(e, z, steps[i].K, steps[i].T); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
