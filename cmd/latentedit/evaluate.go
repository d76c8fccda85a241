package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"latentedit/edit"
	"latentedit/evaluate"
	"latentedit/generator"
	"latentedit/internal/atomicfile"
	"latentedit/internal/progress"
	"latentedit/workspace"
)

// editorMetrics is what evaluate measures of one editor.
type editorMetrics struct {
	Method        string      `json:"method"`
	K             int         `json:"k"`
	Names         []string    `json:"names"`
	Factors       []string    `json:"factors"`
	Effect        [][]float64 `json:"effect_per_unit_step"`
	Matched       []string    `json:"matched_factor"`
	TargetEffect  []*float64  `json:"target_effect"` // null for an unmatched direction
	Leakage       []*float64  `json:"leakage"`
	Commutativity float64     `json:"latent_commutativity"`
}

// runEvaluate measures editors with the dataset's oracle: the attribute-change
// matrix, the Hungarian matching of directions to factors (which then names
// the directions in editor.json), effect and leakage, and the latent
// commutativity error. The HTML report of the study is not built yet.
func runEvaluate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("evaluate", stderr)
	model := fs.String("model", "", "model directory or embedded model name (required)")
	editors := fs.String("editors", "", "comma-separated editor names (default: all in work/MODEL/editors)")
	n := fs.Int("n", 48, "latents per measurement")
	step := fs.Float64("t", 1.5, "edit amount ±t for the attribute change")
	rename := fs.Bool("name", true, "name matched directions after their factor in editor.json")
	minEffect := fs.Float64("min-effect", 0.05, "smallest |change per unit step| (in factor units) that earns a direction its factor's name")
	oracleSteps := fs.Int("oracle-steps", 600, "steps to train the oracle if the model has none")
	backend := fs.String("backend", "", "go (CPU) or xla:/abs/path/plugin.so")
	jsonOut := fs.Bool("json", false, "print the metrics as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *model == "" {
		return errUsage{fmt.Errorf("--model is required")}
	}
	if *n < 1 || *step <= 0 || *step > edit.MaxStep {
		return errUsage{fmt.Errorf("--n must be ≥1 and --t in (0, %d]", edit.MaxStep)}
	}
	ws, err := workspace.Open(*model, *backend)
	if err != nil {
		return err
	}
	m := ws.Model
	names := strings.Split(*editors, ",")
	if *editors == "" {
		names = ws.Editors()
	}
	if len(names) == 0 {
		return fmt.Errorf("no editors under %s: run discover first", ws.NewEditorDir(""))
	}
	orc, err := ws.Oracle(*oracleSteps, stderr)
	if err != nil {
		return err
	}
	results := map[string]*editorMetrics{}
	zs := generator.Latents(424242, 8, m.LatentDim())
	bar := progress.New(stderr, len(names), "evaluate", *jsonOut)
	for i, name := range names {
		bar.Set(i, map[string]float64{})
		e, dir, err := ws.LoadEditor(name)
		if err != nil {
			return err
		}
		ac, err := evaluate.MeasureAttributeChange(m, e, orc, *n, 90210, float32(*step))
		if err != nil {
			return fmt.Errorf("editor %s: %w", name, err)
		}
		match := ac.Match()
		eff, leak := ac.EffectAndLeakage(match)
		comm, err := evaluate.Commutativity(e, zs, float32(*step), float32(*step))
		if err != nil {
			return fmt.Errorf("editor %s: %w", name, err)
		}
		r := &editorMetrics{Method: e.Method(), K: e.K(), Factors: ac.Factors, Effect: ac.Effect,
			TargetEffect: nullable(eff), Leakage: nullable(leak), Commutativity: comm}
		newNames := e.Names()
		for k, f := range match {
			r.Matched = append(r.Matched, "")
			if f >= 0 && math.Abs(ac.Effect[k][f]) >= *minEffect {
				r.Matched[k] = ac.Factors[f]
				if e.Method() != "interfacegan" { // its directions are named by their labels already
					newNames[k] = ac.Factors[f]
				}
			}
		}
		if *rename && !ws.IsShipped(dir) { // shipped editors are read-only and named already
			if err := setNames(dir, e, newNames); err != nil {
				return err
			}
		}
		r.Names = newNames
		results[name] = r
		bar.Set(i+1, nil)
	}
	bar.Finish()
	raw, err := json.MarshalIndent(map[string]any{"model": *model, "oracle_r2": orc.R2, "editors": results}, "", "  ")
	if err != nil {
		return fmt.Errorf("evaluate: encoding the metrics: %w", err)
	}
	out := filepath.Join(ws.ReportsDir(), "metrics.json")
	os.MkdirAll(filepath.Dir(out), 0o755)
	if err := atomicfile.WriteFile(out, append(raw, '\n'), atomicfile.DefaultPerm); err != nil {
		return err
	}
	if *jsonOut {
		fmt.Fprintln(stdout, string(raw))
		return nil
	}
	for _, name := range names {
		r := results[name]
		fmt.Fprintf(stdout, "%s (%s, K=%d): latent commutativity %.4f·‖z‖\n", name, r.Method, r.K, r.Commutativity)
		for k := range r.Names {
			fmt.Fprintf(stdout, "  %-22s matched %-12s effect %s leakage %s\n", r.Names[k], r.Matched[k], fmtNull(r.TargetEffect[k]), fmtNull(r.Leakage[k]))
		}
	}
	fmt.Fprintf(stdout, "metrics: %s\n", out)
	return nil
}

// setNames rewrites editor.json's names (the weights do not change).
func setNames(dir string, e edit.Editor, names []string) error {
	uniq := map[string]int{}
	for i, n := range names {
		uniq[n]++
		if uniq[n] > 1 {
			names[i] = fmt.Sprintf("%s %d", n, uniq[n])
		}
	}
	path := filepath.Join(dir, edit.SpecFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	spec, err := edit.ParseSpec(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	spec.Names = names
	out, _ := json.MarshalIndent(spec, "", "  ")
	return atomicfile.WriteFile(path, append(out, '\n'), atomicfile.DefaultPerm)
}

// nullable maps NaN (JSON cannot hold it) to null.
func nullable(v []float64) []*float64 {
	out := make([]*float64, len(v))
	for i := range v {
		if !math.IsNaN(v[i]) && !math.IsInf(v[i], 0) {
			out[i] = &v[i]
		}
	}
	return out
}

func fmtNull(p *float64) string {
	if p == nil {
		return "  — "
	}
	return fmt.Sprintf("%.2f", *p)
}
