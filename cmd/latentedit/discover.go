package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"latentedit/discover"
	"latentedit/edit"
	"latentedit/evaluate"
	"latentedit/generator"
	"latentedit/internal/progress"
	"latentedit/report/editgrid"
	"latentedit/workspace"
)

func runDiscover(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("discover", stderr)
	d := discover.Default("linear")
	model := fs.String("model", "", "model directory or embedded model name (required)")
	space := fs.String("space", "z", "latent space to edit in: z, w or w+ (w and w+: style and stylegan2 generators; codes (w − w̄)/σ_w, docs/editing.md)")
	method := fs.String("method", "linear", "linear, warped, curvilinear, potential (learned); ganspace, sefa, interfacegan (fitted)")
	name := fs.String("name", "", "editor name (default: the method)")
	resume := fs.Bool("resume", false, "continue a learned editor's run")
	backend := fs.String("backend", "", "go (CPU) or xla:/abs/path/plugin.so")
	jsonOut := fs.Bool("json", false, "progress and result as JSON")
	opts := fs.String("opt", "", "method options key=value,… — linear: orthonormal=true|false; warped: dipoles=16, step=0.5, gamma, init_scale, train_substeps; curvilinear: flow=coupling|ode, layers=4, hidden=128, scale_max=2, ode_steps=8; potential: hidden=64, step=0.5, pde_weight=1, ic_weight=0, init_scale=1, timesteps; ganspace: mode=activations|latent; interfacegan: factors=smile+bangs, solver=logistic|svm, condition=smile:pitch+yaw;bangs:hair_length, l2, ratio")
	samples := fs.Int("samples", 3000, "ganspace, interfacegan: latents sampled")
	oracleSteps := fs.Int("oracle-steps", 600, "interfacegan: steps to train the oracle if the model has none")
	maxT := fs.Float64("t", 0, "traversal grid: largest |t| (0: the method's default)")
	fs.IntVar(&d.K, "k", d.K, "number of directions")
	fs.IntVar(&d.Steps, "steps", d.Steps, "training steps (learned methods)")
	fs.IntVar(&d.Batch, "batch", d.Batch, "batch size")
	fs.Float64Var(&d.LR, "lr", d.LR, "Adam learning rate")
	fs.Var(&d.Schedule, "lr-schedule", "learning-rate schedule: constant, step:AT:FACTOR (step:0.75:0.1 = tenfold drop for the last quarter), cosine[:FINAL]; +warmup:N")
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
	if _, err := generator.ParseSpace(*space); err != nil {
		return errUsage{fmt.Errorf("--space: %w", err)}
	}
	ws, err := workspace.Open(*model, *backend)
	if err != nil {
		return err
	}
	m, err := ws.Model.InSpace(*space)
	if err != nil {
		return err
	}
	if *name == "" {
		*name = *method
	}
	out := ws.NewEditorDir(*name)
	var e edit.Editor
	notes := map[string]any{}
	switch *method {
	case "linear", "warped", "curvilinear", "potential":
		d.Method, d.Options = *method, o
		res, err := discover.Run(m, d, discover.Options{Out: out, Resume: *resume, Log: stderr, JSON: *jsonOut})
		if err != nil {
			return err
		}
		e = res.Editor
		notes["rca"] = res.RCA
	case "interfacegan":
		fit, err := edit.Resolve("interfacegan", o, edit.DefaultInterFaceGANFit())
		if err != nil {
			return err
		}
		orc, err := ws.Oracle(*oracleSteps, stderr)
		if err != nil {
			return err
		}
		bar := progress.New(stderr, *samples, "label latents", *jsonOut)
		if e, err = evaluate.FitInterFaceGAN(m, orc, *samples, d.Seed, fit, func(done, _ int) { bar.Set(done, nil) }); err != nil {
			return err
		}
		bar.Finish()
		if err := edit.Save(out, e, map[string]any{"samples": *samples}); err != nil {
			return err
		}
	case "ganspace", "sefa":
		if e, err = edit.FitClosedForm(m, *method, d.K, *samples, d.Seed, o); err != nil {
			return err
		}
		if err := edit.Save(out, e, map[string]any{"samples": *samples}); err != nil {
			return err
		}
	default:
		return errUsage{fmt.Errorf("--method %q: want linear, warped, curvilinear, potential, ganspace, sefa or interfacegan", *method)}
	}
	t := float32(*maxT)
	if t == 0 {
		t = 3
	}
	grid := filepath.Join(out, "traversal.png")
	if err := editgrid.Traversal(grid, m, e, m.Latent(d.Seed), t, 9); err != nil {
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
