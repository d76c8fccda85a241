package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"latentedit/edit"
	"latentedit/report/study"
	"latentedit/workspace"
)

// runEvaluate measures editors with the dataset's oracle and writes the
// study report (HTML + PNG + metrics.json): sequential-edit grids, the
// commutativity chart, attribute-change heat maps, traversals and the table
// of RCA, effect, leakage, identity, commutativity and quality. Matched
// directions are named after their factor in editor.json.
func runEvaluate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("evaluate", stderr)
	model := fs.String("model", "", "model directory or embedded model name (required)")
	editors := fs.String("editors", "", "comma-separated editor names (default: all of the model's)")
	out := fs.String("out", "", "report folder (default: MODEL-WORK/reports)")
	n := fs.Int("n", 32, "latents per attribute-change and identity measurement")
	commN := fs.Int("comm-n", 6, "latents for commutativity (each × all direction pairs)")
	step := fs.Float64("t", 1.5, "edit amount ±t for the attribute change")
	qualityN := fs.Int("quality-n", 256, "images per Fréchet distance")
	seeds := fs.String("seeds", "7,21,42", "seeds of the sequential-edit grids")
	rename := fs.Bool("name", true, "name matched directions after their factor in editor.json")
	oracleSteps := fs.Int("oracle-steps", 3000, "steps to train the oracle if the model has none")
	backend := fs.String("backend", "", "go (CPU) or xla:/abs/path/plugin.so")
	jsonOut := fs.Bool("json", false, "print the metrics as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *model == "" {
		return errUsage{fmt.Errorf("--model is required")}
	}
	if *n < 1 || *commN < 1 || *qualityN < 2 || *step <= 0 || *step > edit.MaxStep {
		return errUsage{fmt.Errorf("--n and --comm-n must be ≥1, --quality-n ≥2 and --t in (0, %d]", edit.MaxStep)}
	}
	ss, err := parseSeeds(*seeds)
	if err != nil {
		return errUsage{err}
	}
	ws, err := workspace.Open(*model, *backend)
	if err != nil {
		return err
	}
	var names []string
	if *editors != "" {
		names = strings.Split(*editors, ",")
	}
	orc, err := ws.Oracle(*oracleSteps, stderr)
	if err != nil {
		return err
	}
	if *out == "" {
		*out = ws.ReportsDir()
	}
	res, err := study.Run(ws, names, orc, *out, *rename, study.Options{N: *n, CommLatents: *commN, QualityN: *qualityN, T: float32(*step),
		Seeds: ss, Log: stderr, JSON: *jsonOut})
	if err != nil {
		return err
	}
	index, _ := filepath.Abs(filepath.Join(*out, "index.html"))
	if *jsonOut {
		raw, err := json.Marshal(map[string]any{"report": index, "metrics": res})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(raw))
		return nil
	}
	printStudy(stdout, res)
	fmt.Fprintf(stdout, "report: %s\n", index)
	return nil
}

// printStudy prints the table of the report.
func printStudy(w io.Writer, res *study.Results) {
	fmt.Fprintf(w, "%-14s %-12s %6s %7s %7s %7s %9s %9s %9s %8s\n", "editor", "method", "RCA", "effect", "leak", "ident", "comm-lat", "comm-img", "comm-att", "FD-edit")
	for _, r := range res.Editors {
		fmt.Fprintf(w, "%-14s %-12s %6s %7s %7s %7s %9.2e %9.4f %9.4f %8.3f\n", r.Name, r.Method, fmtNull(r.RCA), fmtNull(r.MeanEffect),
			fmtNull(r.MeanLeakage), fmtNull(r.MeanIdentity), r.Commutativity.Latent, r.Commutativity.Image, r.Commutativity.AttributeMean, r.Frechet)
	}
	fmt.Fprintf(w, "Fréchet: samples %.3f, real vs real %.3f\n", res.FrechetSamples, res.FrechetReal)
}

func fmtNull(p *float64) string {
	if p == nil {
		return "—"
	}
	return fmt.Sprintf("%.3f", *p)
}
