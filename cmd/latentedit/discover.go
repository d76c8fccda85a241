package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"latentedit/discover"
	"latentedit/edit"
	"latentedit/generator"
	"latentedit/internal/progress"
	"latentedit/report/editgrid"
	"latentedit/workspace"
)

func runDiscover(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("discover", stderr)
	d := discover.Default("linear")
	model := fs.String("model", "", "model directory or embedded model name (required)")
	method := fs.String("method", "linear", "linear, warped, curvilinear (learned); ganspace, sefa, interfacegan (fitted)")
	name := fs.String("name", "", "editor name (default: the method)")
	resume := fs.Bool("resume", false, "continue a learned editor's run")
	backend := fs.String("backend", "", "go (CPU) or xla:/abs/path/plugin.so")
	jsonOut := fs.Bool("json", false, "progress and result as JSON")
	opts := fs.String("opt", "", "method options key=value,… — linear: orthonormal=true|false; warped: dipoles=16, step=0.5, gamma, init_scale, train_substeps; curvilinear: flow=coupling|ode, layers=4, hidden=128, scale_max=2, ode_steps=8; ganspace: mode=activations|latent; interfacegan: factors=smile+bangs, solver=logistic|svm, condition=smile:pitch+yaw;bangs:hair_length, l2, ratio")
	samples := fs.Int("samples", 3000, "ganspace, interfacegan: latents sampled")
	oracleSteps := fs.Int("oracle-steps", 600, "interfacegan: steps to train the oracle if the model has none")
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
	// Options are checked before any work: a key the method does not
	// have, a word for a number or a fraction for an integer exits 2.
	o, err := edit.ParseOptions(*method, *opts)
	if err == nil {
		err = edit.ValidateOptions(*method, o)
	}
	if err != nil {
		return errUsage{fmt.Errorf("--opt: %w", err)}
	}
	ws, err := workspace.Open(*model, *backend)
	if err != nil {
		return err
	}
	m := ws.Model
	if *name == "" {
		*name = *method
	}
	out := ws.NewEditorDir(*name)
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
	case "interfacegan":
		if e, err = fitInterFaceGAN(ws, *samples, *oracleSteps, d.Seed, o, stderr); err != nil {
			return err
		}
		if err := edit.Save(out, e, map[string]any{"samples": *samples}); err != nil {
			return err
		}
	case "ganspace", "sefa":
		if e, err = fitClosedForm(m, *method, d.K, *samples, d.Seed, o); err != nil {
			return err
		}
		if err := edit.Save(out, e, map[string]any{"samples": *samples}); err != nil {
			return err
		}
	default:
		return errUsage{fmt.Errorf("--method %q: want linear, warped, curvilinear, ganspace, sefa or interfacegan", *method)}
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
	g, err := edit.Resolve(method, o, edit.DefaultGANSpace())
	if err != nil {
		return nil, err
	}
	z := generator.Latents(seed*1_000_003, samples, m.LatentDim())
	if g.Mode == "latent" {
		return edit.NewGANSpace(z, k, m.Backend())
	}
	act, err := m.FirstLayerActivations(z)
	if err != nil {
		return nil, err
	}
	return edit.NewGANSpaceActivations(z, act, k, m.Backend())
}

// fitInterFaceGAN labels sampled latents with the dataset's oracle (trained
// now and kept in work/oracle if there is none yet) and fits one boundary
// per factor. Options: factors=a+b (default: all the oracle's factors),
// solver=logistic|svm, condition=smile:pitch+yaw;bangs:hair_length.
func fitInterFaceGAN(ws *workspace.Workspace, samples, oracleSteps int, seed int64, o edit.Options, log io.Writer) (edit.Editor, error) {
	m := ws.Model
	fit, err := edit.Resolve("interfacegan", o, edit.DefaultInterFaceGANFit())
	if err != nil {
		return nil, err
	}
	only, opt, err := fit.Boundaries()
	if err != nil {
		return nil, err
	}
	orc, err := ws.Oracle(oracleSteps, log)
	if err != nil {
		return nil, err
	}
	z := generator.Latents(seed*7_000_003, samples, m.LatentDim())
	labels := make([][]float32, 0, samples)
	bar := progress.New(log, samples, "label latents", false)
	for s := 0; s < samples; s += 250 {
		e := min(samples, s+250)
		var flat []float32
		for _, v := range z[s:e] {
			flat = append(flat, v...)
		}
		pix, err := m.GenerateFloats(flat, e-s)
		if err != nil {
			return nil, err
		}
		pred, err := orc.Predict(pix, e-s)
		if err != nil {
			return nil, err
		}
		for _, p := range pred {
			row := make([]float32, len(p))
			for i, v := range p {
				row[i] = float32(v)
			}
			labels = append(labels, row)
		}
		bar.Set(e, nil)
	}
	bar.Finish()
	factors := orc.Factors
	if only != nil {
		factors = only
	}
	cols := make([]int, len(factors))
	for i, f := range factors {
		cols[i] = -1
		for j, g := range orc.Factors {
			if g == f {
				cols[i] = j
			}
		}
		if cols[i] < 0 {
			return nil, fmt.Errorf("interfacegan: factor %q is not one of the oracle's %v", f, orc.Factors)
		}
	}
	sel := make([][]float32, len(labels))
	for i, row := range labels {
		sel[i] = make([]float32, len(cols))
		for j, c := range cols {
			sel[i][j] = row[c]
		}
	}
	return edit.NewInterFaceGAN(z, sel, factors, opt, m.Backend())
}
