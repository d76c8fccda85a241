package train_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
	"latentedit/internal/figure"
	"latentedit/train"
	"latentedit/train/killtest"
)

func TestMain(m *testing.M) {
	killtest.Main(m, func(name, dir string) error {
		_, err := regression(dir, false, nil).Run()
		return err
	})
}

// regression is a loop fitting y = x·w* (w* = 1, 2, 3, 4) by Adam, with
// batches that are a function of the step: small enough for a test, and
// every part of a real trainer (state, schedule, curves, checkpoints).
// poison, if set, is the step whose batch holds a NaN.
func regression(dir string, resume bool, poison *int) *train.Loop {
	b, _ := engine.NewBackend("")
	ctx := context.New().Checked(false)
	ctx.SetRNGStateFromSeed(1)
	exec := context.MustNewExec(b, ctx, func(ctx *context.Context, x, y *graph.Node) []*graph.Node {
		w := ctx.In("model").VariableWithValue("w", []float32{0, 0, 0, 0})
		pred := graph.ReduceSum(graph.Mul(x, graph.ExpandAxes(w.ValueGraph(x.Graph()), 0)), -1)
		loss := graph.ReduceAllMean(graph.Square(graph.Sub(pred, y)))
		grad := engine.Adam{Name: "toy", LR: 0.2, Scale: train.LRScale(ctx, x.Graph())}.Minimize(ctx, loss, engine.Variables(ctx, "/model"))
		return []*graph.Node{loss, grad}
	})
	step := func(s int) ([]float64, error) {
		r := rand.New(rand.NewPCG(7, uint64(s)))
		xs, ys := make([]float32, 16*4), make([]float32, 16)
		for i := range ys {
			for j := 0; j < 4; j++ {
				xs[i*4+j] = float32(r.NormFloat64())
				ys[i] += xs[i*4+j] * float32(j+1)
			}
		}
		if poison != nil && s == *poison {
			xs[0] = float32(math.NaN())
		}
		out, err := exec.Exec(tensors.FromFlatDataAndDimensions(xs, 16, 4), tensors.FromFlatDataAndDimensions(ys, 16))
		if err != nil {
			return nil, err
		}
		return []float64{float64(tensors.ToScalar[float32](out[0])), float64(tensors.ToScalar[float32](out[1]))}, nil
	}
	return &train.Loop{Name: "toy", Dir: dir, Ctx: ctx, Keys: []string{"loss", "grad"}, Steps: 60, CheckpointEvery: 5,
		Schedule: train.Schedule{Kind: "cosine", Factor: 0.1, Warmup: 5}, Resume: resume, Step: step,
		Plot: &train.Plot{Title: "toy", Keys: []string{"loss"}}}
}

func TestLossFalls(t *testing.T) {
	dir := t.TempDir()
	res, err := regression(dir, false, nil).Run()
	if err != nil {
		t.Fatal(err)
	}
	first, last := res.Curves.Rows[0][1], res.Last["loss"]
	t.Logf("loss %.3f → %.3f", first, last)
	if !(last < first/4) {
		t.Errorf("loss %.3f → %.3f: did not fall fourfold", first, last)
	}
	for _, f := range []string{train.StateFile, train.CurvesCSV, train.CurvesPNG} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if s, err := train.StateStep(filepath.Join(dir, train.StateFile)); err != nil || s != 60 {
		t.Errorf("state step %d, %v; want 60", s, err)
	}
}

// TestKillAndResume: SIGKILL after a checkpoint, --resume, same bytes.
func TestKillAndResume(t *testing.T) {
	killtest.Run(t, 60, t.TempDir(), t.TempDir(), train.StateFile, func(dir string, resume bool) error {
		_, err := regression(dir, resume, nil).Run()
		return err
	})
}

// TestResumeContinuesCurves: a run stopped at 20 and resumed to 60 has the
// same 60 rows of curves as one uninterrupted run.
func TestResumeContinuesCurves(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if _, err := regression(a, false, nil).Run(); err != nil {
		t.Fatal(err)
	}
	l := regression(b, false, nil)
	l.Steps = 20
	if _, err := l.Run(); err != nil {
		t.Fatal(err)
	}
	res, err := regression(b, true, nil).Run()
	if err != nil {
		t.Fatal(err)
	}
	if res.Start != 20 || len(res.Curves.Rows) != 60 {
		t.Fatalf("resumed at %d with %d rows", res.Start, len(res.Curves.Rows))
	}
	// The schedule is a function of the step and the run's length, so a run
	// cut at 20 of 20 steps is not the first third of a 60-step run: only the
	// state files of equal runs are compared (TestKillAndResume).
	if got := figure.ReadCurves(filepath.Join(b, train.CurvesCSV), 1000, "loss", "grad"); len(got.Rows) != 60 {
		t.Errorf("curves.csv has %d rows, want 60", len(got.Rows))
	}
}

// TestNonFiniteStops: a NaN at step 23 stops the run with ErrNonFinite,
// names the step and the key, and leaves the checkpoint of step 20 intact.
func TestNonFiniteStops(t *testing.T) {
	dir := t.TempDir()
	poison := 22
	_, err := regression(dir, false, &poison).Run()
	if !errors.Is(err, train.ErrNonFinite) {
		t.Fatalf("err = %v, want ErrNonFinite", err)
	}
	if !strings.Contains(err.Error(), "step 23") || !strings.Contains(err.Error(), "loss is NaN") || !strings.Contains(err.Error(), "(step 20)") {
		t.Errorf("err = %v: want the step, the key and the kept checkpoint named", err)
	}
	if s, err := train.StateStep(filepath.Join(dir, train.StateFile)); err != nil || s != 20 {
		t.Fatalf("state step %d, %v; want the good checkpoint of step 20", s, err)
	}
	vals, _, err := engine.ReadCheckpoint(filepath.Join(dir, train.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range tensors.MustCopyFlatData[float32](vals["/model/w"]) {
		if math.IsNaN(float64(v)) {
			t.Fatal("the kept checkpoint holds a NaN")
		}
	}
	// And the run resumes from it once the bad batch is gone.
	if _, err := regression(dir, true, nil).Run(); err != nil {
		t.Fatal(err)
	}
}

// TestScheduleReachesTheStep: with a step schedule of factor 0 the weights
// stop moving at the drop: proof that the multiplier reaches Adam.
func TestScheduleReachesTheStep(t *testing.T) {
	dir := t.TempDir()
	l := regression(dir, false, nil)
	l.Schedule = train.Schedule{Kind: "step", At: 0.5, Factor: 1e-30}
	l.Steps, l.CheckpointEvery = 40, 20
	var w20 []float32
	l.Save = func(step int) error {
		if step == 20 {
			vals, _, err := engine.ReadCheckpoint(filepath.Join(dir, train.StateFile))
			if err != nil {
				return err
			}
			w20 = tensors.MustCopyFlatData[float32](vals["/model/w"])
		}
		return nil
	}
	if _, err := l.Run(); err != nil {
		t.Fatal(err)
	}
	vals, _, err := engine.ReadCheckpoint(filepath.Join(dir, train.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	w40 := tensors.MustCopyFlatData[float32](vals["/model/w"])
	for i := range w40 {
		if math.Abs(float64(w40[i]-w20[i])) > 1e-6 {
			t.Fatalf("weights moved after the drop to ~0: %v → %v", w20, w40)
		}
	}
	if math.Abs(float64(w20[0])) < 0.1 {
		t.Fatalf("weights did not move before the drop: %v", w20)
	}
}

func TestResumeRefusals(t *testing.T) {
	if _, err := regression(t.TempDir(), true, nil).Run(); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("resume without a state: %v", err)
	}
	dir := t.TempDir()
	l := regression(dir, false, nil)
	l.Steps = 5
	if _, err := l.Run(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, train.StateFile))
	os.WriteFile(filepath.Join(dir, train.StateFile), raw[:len(raw)/2], 0o644)
	if _, err := regression(dir, true, nil).Run(); !errors.Is(err, engine.ErrCheckpoint) || !strings.Contains(err.Error(), train.StateFile) {
		t.Errorf("resume from a truncated state: %v", err)
	}
}

func TestSchedule(t *testing.T) {
	for _, tc := range []struct {
		text    string
		step    int
		want    float64
		wantErr string
	}{
		{text: "constant", step: 99, want: 1},
		{text: "step:0.75:0.1", step: 74, want: 1},
		{text: "step:0.75:0.1", step: 75, want: 0.1},
		{text: "cosine", step: 0, want: 1},
		{text: "cosine", step: 99, want: 0},
		{text: "cosine:0.1", step: 99, want: 0.1},
		{text: "cosine:0.1", step: 49, want: 0.1 + 0.9*0.5*(1+math.Cos(math.Pi*49/99))},
		{text: "constant+warmup:10", step: 4, want: 0.5},
		{text: "constant+warmup:10", step: 10, want: 1},
		{text: "step:1.5:0.1", wantErr: "fraction"},
		{text: "step:0.5", wantErr: "want constant"},
		{text: "cosine:x", wantErr: "not a number"},
		{text: "linear", wantErr: "want constant"},
		{text: "constant+warmup:2.5", wantErr: "integer"},
	} {
		s, err := train.ParseSchedule(tc.text)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err %v, want %q", tc.text, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.text, err)
			continue
		}
		if got := s.Scale(tc.step, 100); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s at %d: %g, want %g", tc.text, tc.step, got, tc.want)
		}
		if back, err := train.ParseSchedule(s.String()); err != nil || back != s {
			t.Errorf("%s: String %q does not parse back (%v)", tc.text, s.String(), err)
		}
	}
}
