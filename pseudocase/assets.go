package pseudocase

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"latentedit/workspace"
)

// Dir is the folder of this package's trained parts inside a model or work
// directory: the segmenter and one calibration per editor.
const Dir = "pseudocase"

// find returns the first of work/Dir/rel, shipped/Dir/rel that exists: what
// a user trained shadows what the binary ships, as for editors.
func find(ws *workspace.Workspace, rel string) (string, bool) {
	roots := []string{ws.Work}
	if ws.Shipped != "" {
		roots = append(roots, ws.Shipped)
	}
	for _, r := range roots {
		p := filepath.Join(r, Dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	return filepath.Join(ws.Work, Dir, rel), false
}

// SegmenterDir is where the model's segmenter is read from (ok false: none yet;
// the path is then where TrainSegmenter's result belongs).
func SegmenterDir(ws *workspace.Workspace) (string, bool) {
	p, ok := find(ws, SegmenterSpec)
	return filepath.Dir(p), ok
}

// CalibrationPath is where the calibration of editor name is read from.
func CalibrationPath(ws *workspace.Workspace, name string) (string, bool) {
	return find(ws, "calibration-"+name+".json")
}

// ErrNoSegmenter is returned by Load when the model has no segmenter.
var ErrNoSegmenter = errors.New("no vessel segmenter")

// Load gathers a run's tools from the workspace: the generator, editor
// name, the oracle (trained with oracleSteps only if the model has none),
// the segmenter (never trained here: see TrainSegmenter) and the editor's
// calibration (measured on calN latents and saved in the work folder when
// there is none).
func Load(ws *workspace.Workspace, name string, oracleSteps, calN int, log io.Writer) (Tools, error) {
	t := Tools{Model: ws.Model, EditorName: name}
	dir, ok := SegmenterDir(ws)
	if !ok {
		return t, fmt.Errorf("%w for this model in %s: train one with `latentedit pseudocase --model … --train-segmenter`", ErrNoSegmenter, dir)
	}
	var err error
	if t.Segmenter, err = LoadSegmenter(dir, ws.Model.Backend()); err != nil {
		return t, err
	}
	if t.Oracle, err = ws.Oracle(oracleSteps, log); err != nil {
		return t, err
	}
	if t.Editor, _, err = ws.LoadEditor(name); err != nil {
		return t, err
	}
	// Seeds, edits and renders happen in the editor's space (z, w or w+).
	if t.Model, err = ws.ModelFor(t.Editor); err != nil {
		return t, err
	}
	path, ok := CalibrationPath(ws, name)
	if ok {
		if t.Cal, err = LoadCalibration(path, t.Editor, t.Oracle); err == nil {
			return t, nil
		}
		fmt.Fprintf(log, "pseudocase: %v; recalibrating\n", err)
	}
	fmt.Fprintf(log, "pseudocase: calibrating editor %s on %d latents\n", name, calN)
	if t.Cal, err = Calibrate(t.Model, t.Editor, name, t.Oracle, calN, calibrationSeed, calibrationT); err != nil {
		return t, err
	}
	path = filepath.Join(ws.Work, Dir, "calibration-"+name+".json")
	return t, t.Cal.Save(path)
}

// The calibration's latents come from a seed range no pseudo-case uses by
// default, and its ±t is the amount `evaluate` measures with.
const (
	calibrationSeed = 900_000_000
	calibrationT    = 1.5
)
