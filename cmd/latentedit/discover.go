package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"latentedit/discover"
	"latentedit/edit"
	"latentedit/engine"
	"latentedit/generator"
	"latentedit/models"
	"latentedit/report/editgrid"
)

// loadModel opens --model: a model directory, or the name of an embedded
// default model ("faces-gan").
func loadModel(model, backend string) (*generator.Model, error) {
	be, err := engine.NewBackend(backend)
	if err != nil {
		return nil, err
	}
	dir := model
	if _, err := os.Stat(filepath.Join(model, generator.InfoFile)); err != nil {
		if d, err2 := models.Extract(model, ""); err2 == nil {
			dir = d
		} else {
			return nil, fmt.Errorf("model %s: %w (nor is it an embedded model: %v)", model, err, models.Names())
		}
	}
	return generator.Load(dir, be)
}

// editorDir is where an editor of a model lives: the model's editors/NAME,
// or, for an embedded model (read-only), ./editors/MODEL/NAME.
func editorDir(model string, m *generator.Model, name string) string {
	if filepath.Clean(m.Dir) == filepath.Clean(model) {
		return filepath.Join(m.Dir, "editors", name)
	}
	return filepath.Join("editors", model, name)
}

// parseOptions reads "key=value,key=value" method options; numbers and
// booleans are typed, anything else stays a string.
func parseOptions(s string) (edit.Options, error) {
	opt := edit.Options{}
	if s == "" {
		return opt, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--opt: %q is not key=value", kv)
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			opt[k] = f
		} else if b, err := strconv.ParseBool(v); err == nil {
			opt[k] = b
		} else {
			opt[k] = v
		}
	}
	return opt, nil
}

func runDiscover(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("discover", stderr)
	d := discover.Default("linear")
	model := fs.String("model", "", "model directory or embedded model name (required)")
	method := fs.String("method", "linear", "linear, warped, curvilinear (learned); ganspace, sefa (fitted)")
	name := fs.String("name", "", "editor name (default: the method)")
	resume := fs.Bool("resume", false, "continue a learned editor's run")
	backend := fs.String("backend", "", "go (CPU) or xla:/abs/path/plugin.so")
	jsonOut := fs.Bool("json", false, "progress and result as JSON")
	opts := fs.String("opt", "", "method options key=value,… (orthonormal=true, dipoles=16, step=0.5, flow=coupling|ode, layers=4, mode=latent|activations)")
	samples := fs.Int("samples", 5000, "ganspace: latents sampled for PCA")
	maxT := fs.Float64("t", 0, "traversal grid: largest |t| (0: the method's default)")
	fs.IntVar(&d.K, "k", d.K, "number of directions")
	fs.IntVar(&d.Steps, "steps", d.Steps, "training steps (learned methods)")
	fs.IntVar(&d.Batch, "batch", d.Batch, "batch size")
	fs.Float64Var(&d.LR, "lr", d.LR, "Adam learning rate")
	fs.Float64Var(&d.Lambda, "lambda", d.Lambda, "weight of the ε L1 loss")
	fs.Float64Var(&d.LogDet, "logdet", d.LogDet, "weight of the curvilinear log-det² penalty")
	fs.Float64Var(&d.EpsMin, "eps-min", 0, "smallest |ε| in training (0: method default)")
	fs.Float64Var(&d.EpsMax, "eps-max", 0, "largest |ε| in training (0: method default)")
	fs.IntVar(&d.Width, "width", d.Width, "reconstructor width")
	fs.Int64Var(&d.Seed, "seed", d.Seed, "seed")
	fs.IntVar(&d.CheckpointEvery, "checkpoint-every", d.CheckpointEvery, "checkpoint every N steps")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *model == "" {
		return errUsage{fmt.Errorf("--model is required")}
	}
	o, err := parseOptions(*opts)
	if err != nil {
		return errUsage{err}
	}
	m, err := loadModel(*model, *backend)
	if err != nil {
		return err
	}
	if *name == "" {
		*name = *method
	}
	out := editorDir(*model, m, *name)
	var e edit.Editor
	notes := map[string]any{}
	switch *method {
	case "linear", "warped", "curvilinear":
		d.Method, d.Options = *method, o
		res, err := discover.Run(m, d, discover.Options{Out: out, Resume: *resume, Log: stderr, JSON: *jsonOut})
		if err != nil {
			return err
		}
		e = res.Editor
		notes["rca"] = res.RCA
	case "ganspace", "sefa":
		if e, err = fitClosedForm(m, *method, d.K, *samples, d.Seed, o); err != nil {
			return err
		}
		if err := edit.Save(out, e, map[string]any{"samples": *samples}); err != nil {
			return err
		}
	default:
		return errUsage{fmt.Errorf("--method %q: want linear, warped, curvilinear, ganspace or sefa (interfacegan needs labels: see evaluate)", *method)}
	}
	t := float32(*maxT)
	if t == 0 {
		t = 3
	}
	grid := filepath.Join(out, "traversal.png")
	if err := editgrid.Traversal(grid, m, e, generator.Latent(d.Seed, m.LatentDim()), t, 9); err != nil {
		return err
	}
	if *jsonOut {
		notes["editor"], notes["traversal"] = out, grid
		b, _ := json.Marshal(notes)
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "%s editor with %d directions in %s; traversal grid %s", e.Method(), e.K(), out, grid)
		if r, ok := notes["rca"]; ok {
			fmt.Fprintf(stdout, "; RCA on fresh samples %.3f", r)
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

// fitClosedForm fits GANSpace (PCA of latents, or of first-layer
// activations mapped back: option mode=activations, the default) or SeFa.
func fitClosedForm(m *generator.Model, method string, k, samples int, seed int64, o edit.Options) (edit.Editor, error) {
	if method == "sefa" {
		w, err := m.FirstLayerWeights()
		if err != nil {
			return nil, err
		}
		return edit.NewSeFa(w, k, m.Backend())
	}
	z := generator.Latents(seed*1_000_003, samples, m.LatentDim())
	if mode, _ := o["mode"].(string); mode == "latent" {
		return edit.NewGANSpace(z, k, m.Backend())
	}
	act, err := m.FirstLayerActivations(z)
	if err != nil {
		return nil, err
	}
	return edit.NewGANSpaceActivations(z, act, k, m.Backend())
}
