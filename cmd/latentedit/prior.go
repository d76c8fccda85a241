package main

import (
	"fmt"
	"io"
	"strings"

	"latentedit/dataset"
	"latentedit/generator"
	"latentedit/internal/mixture"
	"latentedit/internal/progress"
	"latentedit/workspace"
)

// priorResult is what `prior --json` prints.
type priorResult struct {
	Model string `json:"model"`
	generator.PriorFit
	File string `json:"file"`
}

// runPrior fits a VAE's ex-post latent prior (generator.Prior) and records it
// in the model directory, so that every seed of the model — gallery, report,
// quality, editor fits, discovery — is drawn through it.
func runPrior(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("prior", stderr)
	model := fs.String("model", "", "VAE model directory to fit the prior of; it is written into it (required; not an embedded name)")
	k := fs.Int("components", 64, "Gaussian components (full covariance)")
	n := fs.Int("images", 10000, "training images whose encodings the mixture is fitted to")
	seed := fs.Int64("seed", 1, "k-means++ seed of the fit")
	iters := fs.Int("iters", 200, "EM iterations at most")
	reg := fs.Float64("reg", 1e-4, "ridge added to every covariance's diagonal")
	backend := fs.String("backend", "", "go (CPU) or xla:/abs/path/plugin.so")
	jsonOut := fs.Bool("json", false, "progress and result as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *model == "":
		return errUsage{fmt.Errorf("--model is required")}
	case *k < 1 || *n < 2**k:
		return errUsage{fmt.Errorf("--components %d, --images %d: want at least one component and two images per component", *k, *n)}
	case *iters < 1:
		return errUsage{fmt.Errorf("--iters %d: want at least 1", *iters)}
	case !(*reg > 0):
		return errUsage{fmt.Errorf("--reg %g: want > 0", *reg)}
	}
	ws, err := workspace.Open(*model, *backend)
	if err != nil {
		return err
	}
	if ws.Shipped != "" {
		return fmt.Errorf("prior: %s is an embedded model; copy it to a directory first (the prior is written into the model directory)", *model)
	}
	m := ws.Model
	train, err := m.Info.OpenData(dataset.Options{N: *n, Seed: m.Info.Config.DataSeed, NoCorrelation: m.Info.Config.NoCorrelation})
	if err != nil {
		return err
	}
	held, err := m.Info.OpenData(dataset.Options{N: max(1, *n/10), Seed: m.Info.Config.DataSeed + 1, Split: "test", NoCorrelation: m.Info.Config.NoCorrelation})
	if err != nil {
		return err
	}
	var bar *progress.Bar
	stage := ""
	p, fit, err := generator.FitPrior(m, train, held, *n, mixture.Options{K: *k, Seed: *seed, MaxIter: *iters, Reg: *reg},
		func(s string, done, total int) {
			if s != stage {
				if bar != nil {
					bar.Finish()
				}
				stage, bar = s, progress.New(stderr, total, "prior "+s, *jsonOut)
			}
			bar.Set(done, nil)
		})
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return err
	}
	cmdline := "latentedit prior " + strings.Join(args, " ")
	if err := generator.AttachPrior(*model, p, generator.PriorInfo{Images: *n, Seed: *seed, Command: cmdline}); err != nil {
		return err
	}
	return printResult(stdout, *jsonOut, priorResult{Model: *model, PriorFit: fit, File: generator.PriorFile},
		fmt.Sprintf("fitted a %d-component prior to %d encodings of %s in %d EM iterations; held-out mean log-density %.1f (N(0, I): %.1f); wrote %s and model.json",
			*k, *n, *model, fit.Iterations, fit.HeldOutLogDensity, fit.HeldOutNormal, generator.PriorFile))
}
