// Package workspace resolves a --model argument (a model directory, or the
// name of an embedded default model) to the generator and the two places its
// editors and oracle can live: the writable work folder, and — for embedded
// models — the read-only files shipped with the binary.
//
// Every command and the server find editors the same way through it, so an
// editor trained with `discover` is seen by `edit`, `evaluate`, `serve` and
// `pseudocase` alike. A trained editor in the work folder shadows a shipped
// one of the same name: what a user trained is what they meant.
package workspace

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"latentedit/dataset"
	"latentedit/edit"
	"latentedit/engine"
	"latentedit/evaluate"
	"latentedit/generator"
	"latentedit/models"
)

// Folder names inside a model or work directory.
const (
	EditorsDir = "editors"
	OracleDir  = "oracle"
	ReportsDir = "reports"
)

// Workspace is one opened model and where its companions live.
type Workspace struct {
	Model *generator.Model
	// Work is where new editors, oracles and reports are written: the model
	// directory itself, or ./work/NAME for an embedded model.
	Work string
	// Shipped is the extracted embedded model directory (read-only), or ""
	// when the model is a directory of the user's.
	Shipped string
}

// Open loads the model named by arg on the backend (see engine.NewBackend).
func Open(arg, backend string) (*Workspace, error) {
	be, err := engine.NewBackend(backend)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(arg, generator.InfoFile)); err == nil {
		m, err := generator.Load(arg, be)
		if err != nil {
			return nil, err
		}
		return &Workspace{Model: m, Work: arg}, nil
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("model %s: %w", arg, err)
	}
	dir, err2 := models.Extract(arg, "")
	if err2 != nil {
		return nil, fmt.Errorf("model %s: not a model directory (no %s) nor an embedded model (%v)", arg, generator.InfoFile, models.Names())
	}
	m, err := generator.Load(dir, be)
	if err != nil {
		return nil, err
	}
	return &Workspace{Model: m, Work: filepath.Join("work", arg), Shipped: dir}, nil
}

// NewEditorDir is where an editor called name is written.
func (w *Workspace) NewEditorDir(name string) string {
	return filepath.Join(w.Work, EditorsDir, name)
}

// EditorDir is where editor name is read from: the work folder if it has
// it, else the shipped files. ok is false when neither has it.
func (w *Workspace) EditorDir(name string) (dir string, ok bool) {
	for _, root := range w.roots() {
		d := filepath.Join(root, EditorsDir, name)
		if _, err := os.Stat(filepath.Join(d, edit.SpecFile)); err == nil {
			return d, true
		}
	}
	return w.NewEditorDir(name), false
}

// IsShipped reports whether dir is inside the read-only shipped files.
func (w *Workspace) IsShipped(dir string) bool {
	if w.Shipped == "" {
		return false
	}
	rel, err := filepath.Rel(w.Shipped, dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// Editors lists the editor names found in the work folder and the shipped
// files, sorted, each once.
func (w *Workspace) Editors() []string {
	seen := map[string]bool{}
	var names []string
	for _, root := range w.roots() {
		entries, _ := os.ReadDir(filepath.Join(root, EditorsDir))
		for _, e := range entries {
			if !e.IsDir() || seen[e.Name()] {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, EditorsDir, e.Name(), edit.SpecFile)); err != nil {
				continue
			}
			seen[e.Name()] = true
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// LoadEditor loads editor name (a name under editors/, or a directory
// holding editor.json) in its space: an editor of w or w+ is checked against
// the model seen there, and refused, naming editor.json's space, on a model
// without a mapping network. ModelFor gives the model it moves.
func (w *Workspace) LoadEditor(name string) (edit.Editor, string, error) {
	dir := name
	if _, err := os.Stat(filepath.Join(dir, edit.SpecFile)); err != nil {
		var ok bool
		if dir, ok = w.EditorDir(name); !ok {
			return nil, "", fmt.Errorf("editor %q: not found under %s (have %v)", name, filepath.Join(w.Work, EditorsDir), w.Editors())
		}
	}
	spec, err := edit.ReadSpec(dir)
	if err != nil {
		return nil, dir, err
	}
	m, err := w.Model.InSpace(spec.Space)
	if err != nil {
		return nil, dir, fmt.Errorf("load editor %s: field space %q of %s: %w", dir, spec.Space, edit.SpecFile, err)
	}
	e, err := edit.Load(dir, m.Space(), m.LatentDim(), m.Backend())
	return e, dir, err
}

// ModelFor is the model seen in the space editor e moves (the model itself
// for z).
func (w *Workspace) ModelFor(e edit.Editor) (*generator.Model, error) {
	return w.Model.InSpace(e.Space())
}

// OracleDir is where the oracle is read from: the work folder if it has
// one, else the shipped one, else the work folder (where one is trained).
func (w *Workspace) OracleDir() string {
	for _, root := range w.roots() {
		d := filepath.Join(root, OracleDir)
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	return filepath.Join(w.Work, OracleDir)
}

// ReportsDir is where evaluation output is written.
func (w *Workspace) ReportsDir() string { return filepath.Join(w.Work, ReportsDir) }

func (w *Workspace) roots() []string {
	if w.Shipped == "" {
		return []string{w.Work}
	}
	return []string{w.Work, w.Shipped}
}

// Oracle loads the model's oracle (work folder, then shipped) or, when there
// is none, trains one for steps steps on 20000 rendered images of the
// model's dataset (fewer overfit the subtle factors), measures it on 1000
// others and saves it in the work folder. Its training state is
// checkpointed there too: a call after a killed training resumes it.
func (w *Workspace) Oracle(steps int, log io.Writer) (*evaluate.Oracle, error) {
	o, _, err := w.OracleProgress(steps, log, false)
	return o, err
}

// OracleProgress is Oracle with progress as JSON lines when jsonLines is
// set; trained reports whether it trained (or finished training) one.
func (w *Workspace) OracleProgress(steps int, log io.Writer, jsonLines bool) (o *evaluate.Oracle, trained bool, err error) {
	dir := w.OracleDir()
	if o, err := evaluate.LoadOracle(dir, w.Model.Backend()); err == nil {
		// An oracle of an older dataset layout (MNIST's before its shape
		// measures: one factor, "label") must not judge the new one.
		if f, err := w.datasetFactors(); err == nil && !slices.Equal(o.Factors, evaluate.OracleFactors(f)) {
			return nil, false, fmt.Errorf("oracle %s reads factors %v, the oracle of dataset %s reads %v: it is from an older latentedit; delete it to train a new one", dir, o.Factors, w.Model.Info.Dataset, evaluate.OracleFactors(f))
		}
		return o, false, nil
	} else if _, statErr := os.Stat(filepath.Join(dir, evaluate.OracleSpec)); statErr == nil {
		return nil, false, err // present but broken: say so rather than silently retrain over it
	}
	run := filepath.Join(w.Work, OracleDir)
	_, statErr := os.Stat(filepath.Join(run, evaluate.OracleStateFile))
	resume := statErr == nil
	m := w.Model
	opt := dataset.Options{N: 20000, Seed: 12345}
	train, err := m.Info.OpenData(opt)
	if err != nil {
		return nil, false, err
	}
	opt.N, opt.Seed, opt.Split = 1000, 54321, "test" // MNIST's held-out digits are its test split
	held, err := m.Info.OpenData(opt)
	if err != nil {
		return nil, false, err
	}
	if resume {
		fmt.Fprintf(log, "resuming the oracle's training from %s\n", run)
	}
	o, err = evaluate.TrainOracle(train, held, m.Backend(), evaluate.OracleOptions{Steps: steps, Dir: run, Resume: resume, Log: log, JSON: jsonLines})
	if err != nil {
		return nil, false, err
	}
	fmt.Fprintf(log, "oracle held-out R²: %v\n", o.R2)
	return o, true, o.Save(run)
}
