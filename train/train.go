// Package train is the one training loop of latentedit. The generator
// trainer, the discovery of editors, the oracle and the segmenter each
// describe a step (a function of the step number that runs one compiled
// update and returns named values) and hand it to Loop, which owns what they
// have in common: the learning-rate schedule, the NaN/Inf policy, the
// progress bar and --json lines, the training curves, atomic checkpoints of
// the whole state every N steps and a --resume that continues bit for bit.
//
// Bit-for-bit resumption is a contract between the loop and the trainer: the
// loop restores every variable of the state (weights, Adam moments, averages,
// counters) and the step number; the trainer makes everything else a step
// reads (data order, latents, noise, augmentation) a function of its seed
// and the step number, never of the process's history.
package train

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
	"latentedit/internal/figure"
	"latentedit/internal/progress"
)

// Files of a run directory.
const (
	StateFile = "train.ckpt" // every variable of the state, and the step
	CurvesCSV = "curves.csv" // one row per step: the step's values
	CurvesPNG = "curves.png" // the plotted curves (when Loop.Plot is set)
)

// ErrNonFinite is wrapped by the error of a run stopped by a NaN or an Inf.
var ErrNonFinite = errors.New("non-finite value")

// Plot says which curves go on curves.png.
type Plot struct {
	Title string
	Keys  []string          // plotted keys, in legend order
	Names map[string]string // legend names of some keys (the key otherwise)
}

// Loop is one training run. Fill the fields, then call Run.
type Loop struct {
	Name string // what the progress bar says, e.g. "train gan faces"
	// Dir is the run directory: the state, curves.csv and curves.png. Empty
	// means a run that keeps nothing on disk (tests, throw-away fits).
	Dir string
	// State is the state file's path inside Dir (StateFile when empty).
	State string
	// Ctx holds the variables of the state; Scopes picks them (nil: all).
	Ctx    *context.Context
	Scopes []string
	// Meta is stored in the state beside the step: what a resume needs to
	// rebuild the trainer (its config) travels with the weights, so a kill
	// between the state and the trainer's own files loses nothing.
	Meta map[string]string
	// Keys name the values Step returns, in order.
	Keys []string
	// Steps is the step the run ends at; CheckpointEvery the period of the
	// state checkpoints (the last step is always checkpointed).
	Steps           int
	CheckpointEvery int
	Schedule        Schedule
	Resume          bool
	Log             io.Writer
	JSON            bool

	// Step runs step s (0-based) and returns one value per key.
	Step func(s int) ([]float64, error)
	// Show, optional, picks what the progress bar shows of a step's values
	// (all of them when nil).
	Show func(s int, vals []float64) map[string]float64
	// Save, optional, writes the trainer's own files for a checkpoint at
	// step (weights, model.json) after the state is on disk.
	Save func(step int) error
	// Periodic, optional, runs every Every steps and after the last one
	// (sample grids).
	Every    int
	Periodic func(step int) error
	// Plot, optional, draws curves.png at every checkpoint.
	Plot *Plot
}

// Result is what a finished run reports.
type Result struct {
	Start  int                // the step the run began (or resumed) at
	Step   int                // the step it ended at
	Last   map[string]float64 // the values of the last step run (nil if none ran)
	Curves *figure.Curves     // the history, including the resumed part
}

// StatePath is the state file of the run.
func (l *Loop) StatePath() string { return filepath.Join(l.Dir, cmp.Or(l.State, StateFile)) }

// StateStep reads the step a state file was saved at; the error wraps
// os.ErrNotExist when there is none.
func StateStep(path string) (int, error) {
	s, _, err := ReadState(path)
	return s, err
}

// ReadState reads the step and the Meta a state file was saved with.
func ReadState(path string) (int, map[string]string, error) {
	_, meta, err := engine.ReadCheckpoint(path)
	if err != nil {
		return 0, nil, err
	}
	s, err := metaStep(path, meta)
	return s, meta, err
}

func metaStep(path string, meta map[string]string) (int, error) {
	s, err := strconv.Atoi(meta["step"])
	if err != nil || s < 0 {
		return 0, fmt.Errorf("%s: %w: step %q is not a step number", path, engine.ErrCheckpoint, meta["step"])
	}
	return s, nil
}

func (l *Loop) validate() error {
	switch {
	case l.Ctx == nil || l.Step == nil:
		return fmt.Errorf("%s: the loop needs a context and a step function", l.Name)
	case l.Steps < 0:
		return fmt.Errorf("%s: steps %d < 0", l.Name, l.Steps)
	case l.Dir != "" && l.CheckpointEvery < 1:
		return fmt.Errorf("%s: checkpoint every %d steps", l.Name, l.CheckpointEvery)
	case l.Resume && l.Dir == "":
		return fmt.Errorf("%s: resume needs a run directory", l.Name)
	case l.Periodic != nil && l.Every < 1:
		return fmt.Errorf("%s: periodic work every %d steps", l.Name, l.Every)
	}
	return l.Schedule.Validate()
}

// Run trains from step 0, or with Resume from the state in Dir, to Steps.
// A NaN or Inf among a step's values stops the run with an error wrapping
// ErrNonFinite; the last good checkpoint stays on disk untouched.
func (l *Loop) Run() (*Result, error) {
	if err := l.validate(); err != nil {
		return nil, err
	}
	if l.Dir != "" {
		if err := os.MkdirAll(l.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("%s: %w", l.Name, err)
		}
	}
	res := &Result{Curves: figure.NewCurves(l.Keys...)}
	if l.Resume {
		meta, err := engine.LoadCheckpoint(l.Ctx, l.StatePath())
		if err != nil {
			return nil, fmt.Errorf("%s --resume: %w", l.Name, err)
		}
		if res.Start, err = metaStep(l.StatePath(), meta); err != nil {
			return nil, fmt.Errorf("%s --resume: %w", l.Name, err)
		}
		res.Curves = figure.ReadCurves(filepath.Join(l.Dir, CurvesCSV), res.Start, l.Keys...)
	}
	lr := lrVariable(l.Ctx)
	lrNow := math.NaN()
	bar := progress.New(l.Log, l.Steps, l.Name, l.JSON)
	bar.Set(res.Start, nil)
	lastGood := res.Start
	for s := res.Start; s < l.Steps; s++ {
		if f := l.Schedule.Scale(s, l.Steps); f != lrNow {
			if err := lr.SetValue(tensors.FromScalar(float32(f))); err != nil {
				return nil, fmt.Errorf("%s: learning rate: %w", l.Name, err)
			}
			lrNow = f
		}
		vals, err := l.Step(s)
		if err != nil {
			return nil, fmt.Errorf("%s: step %d: %w", l.Name, s+1, err)
		}
		if len(vals) != len(l.Keys) {
			return nil, fmt.Errorf("%s: step %d returned %d values for %d keys", l.Name, s+1, len(vals), len(l.Keys))
		}
		res.Last = map[string]float64{}
		for i, k := range l.Keys {
			res.Last[k] = vals[i]
			if math.IsNaN(vals[i]) || math.IsInf(vals[i], 0) {
				return nil, l.nonFinite(s+1, k, vals[i], lastGood)
			}
		}
		res.Curves.Add(s+1, vals)
		show := res.Last
		if l.Show != nil {
			show = l.Show(s, vals)
		}
		bar.Set(s+1, show)
		done := s+1 == l.Steps
		if l.Periodic != nil && ((s+1)%l.Every == 0 || done) {
			if err := l.Periodic(s + 1); err != nil {
				return nil, fmt.Errorf("%s: %w", l.Name, err)
			}
		}
		if l.Dir != "" && ((s+1)%l.CheckpointEvery == 0 || done) {
			if err := l.checkpoint(s+1, res.Curves); err != nil {
				return nil, err
			}
			lastGood = s + 1
		}
	}
	if res.Start >= l.Steps && l.Periodic != nil { // nothing to run, but leave the periodic output complete
		if err := l.Periodic(res.Start); err != nil {
			return nil, fmt.Errorf("%s: %w", l.Name, err)
		}
	}
	bar.Finish()
	res.Step = max(res.Start, l.Steps)
	return res, nil
}

func (l *Loop) nonFinite(step int, key string, v float64, lastGood int) error {
	kept := "no checkpoint had been written yet"
	if l.Dir != "" && lastGood > 0 {
		kept = fmt.Sprintf("the last good checkpoint (step %d) is kept in %s", lastGood, l.StatePath())
	}
	return fmt.Errorf("%s: step %d: %s is %v: %w; stopped, %s", l.Name, step, key, v, ErrNonFinite, kept)
}

// checkpoint writes the state, then the trainer's files, then the curves:
// a reader that finds the trainer's files finds the state they came from.
func (l *Loop) checkpoint(step int, curves *figure.Curves) error {
	vals := map[string]*tensors.Tensor{}
	for v := range l.Ctx.IterVariables() {
		if !l.inState(v.Scope()) {
			continue
		}
		t, err := v.Value()
		if err != nil {
			return fmt.Errorf("%s: checkpoint: variable %s: %w", l.Name, v.ScopeAndName(), err)
		}
		vals[v.ScopeAndName()] = t
	}
	if err := os.MkdirAll(filepath.Dir(l.StatePath()), 0o755); err != nil {
		return fmt.Errorf("%s: %w", l.Name, err)
	}
	meta := map[string]string{"step": strconv.Itoa(step)}
	for k, v := range l.Meta {
		if k != "step" {
			meta[k] = v
		}
	}
	if err := engine.SaveTensors(l.StatePath(), vals, meta); err != nil {
		return fmt.Errorf("%s: %w", l.Name, err)
	}
	if l.Save != nil {
		if err := l.Save(step); err != nil {
			return fmt.Errorf("%s: %w", l.Name, err)
		}
	}
	if l.Plot != nil {
		var series []figure.Series
		for _, k := range l.Plot.Keys {
			series = append(series, figure.Smooth(curves.Series(k, l.Plot.Names[k]), 25))
		}
		if err := figure.LinePlot(filepath.Join(l.Dir, CurvesPNG), l.Plot.Title, "step", "value (moving average of 25)", series); err != nil {
			return fmt.Errorf("%s: %w", l.Name, err)
		}
	}
	if err := curves.WriteCSV(filepath.Join(l.Dir, CurvesCSV)); err != nil {
		return fmt.Errorf("%s: %w", l.Name, err)
	}
	return nil
}

func (l *Loop) inState(scope string) bool {
	if l.Scopes == nil {
		return true
	}
	for _, p := range l.Scopes {
		if engine.InScope(scope, p) {
			return true
		}
	}
	return false
}
