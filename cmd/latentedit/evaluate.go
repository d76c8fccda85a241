package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"latentedit/edit"
	"latentedit/evaluate"
	"latentedit/pseudocase"
	"latentedit/report/study"
	"latentedit/workspace"
)

// runEvaluate measures editors with the dataset's oracle and writes the
// study report (HTML + PNG + metrics.json): sequential-edit grids, the
// commutativity chart, attribute-change heat maps, traversals and the table
// of RCA, effect, leakage, identity, commutativity and quality. Matched
// directions are named after their factor in editor.json. With --quality it
// first measures the generator against its data (quality.json, quality.html
// and a section of the study); a model without editors then gets that alone.
func runEvaluate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("evaluate", stderr)
	model := fs.String("model", "", "model directory or embedded model name (required)")
	editors := fs.String("editors", "", "comma-separated editor names (default: all of the model's)")
	out := fs.String("out", "", "report folder (default: MODEL-WORK/reports)")
	n := fs.Int("n", 32, "latents per attribute-change and identity measurement")
	commN := fs.Int("comm-n", 6, "latents for commutativity (each × all direction pairs)")
	step := fs.Float64("t", 1.5, "edit amount ±t for the attribute change")
	qualityN := fs.Int("quality-n", 256, "images per Fréchet distance (1000 with --quality)")
	quality := fs.Bool("quality", false, "measure the generator against its data: Fréchet, precision/recall, W1 per factor, mode and artefact rates, the issue #15 targets")
	runStudy := fs.Bool("study", true, "with --quality, also measure the editors (skipped when the model has none)")
	oracleFrom := fs.String("oracle", "", "judge with this oracle (its directory, or a model whose oracle to borrow) instead of the model's own")
	classifierSteps := fs.Int("classifier-steps", 3000, "steps to train the class classifier (MNIST) if the model has none")
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
	studyN := *qualityN
	if *quality && !flagSet(fs, "quality-n") {
		*qualityN = 1000
	}
	if *quality && *qualityN <= 3 {
		return errUsage{fmt.Errorf("--quality needs --quality-n > 3 (the k of the k-NN manifolds)")}
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
	if *out == "" {
		*out = ws.ReportsDir()
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	result := map[string]any{}
	var q *evaluate.Quality
	var judge evaluate.Judge
	if *quality {
		if judge, err = ws.Judge(*oracleFrom, *oracleSteps, *classifierSteps, stderr); err != nil {
			return err
		}
		if q, err = measureQuality(ws, *model, judge, evaluate.QualityOptions{N: *qualityN, Log: stderr, JSON: *jsonOut}, stderr); err != nil {
			return err
		}
		jsonPath, htmlPath, err := study.WriteQuality(*out, q)
		if err != nil {
			return err
		}
		result["quality"], result["quality_json"], result["quality_page"] = q, abs(jsonPath), abs(htmlPath)
	}
	var res *study.Results
	if !*quality || (*runStudy && (len(names) > 0 || len(ws.Editors()) > 0)) {
		orc, ok := judge.(*evaluate.Oracle)
		if !ok && *oracleFrom != "" {
			orc, err = ws.OracleFrom(*oracleFrom)
		} else if !ok {
			orc, err = ws.Oracle(*oracleSteps, stderr)
		}
		if err != nil {
			return err
		}
		cls, _ := judge.(*evaluate.Classifier)
		if cls == nil && ws.HasClasses() {
			if cls, err = ws.Classifier(*classifierSteps, stderr); err != nil {
				return err
			}
		}
		res, err = study.Run(ws, names, orc, *out, *rename, study.Options{N: *n, CommLatents: *commN, QualityN: studyN, T: float32(*step),
			Seeds: ss, Log: stderr, JSON: *jsonOut, Quality: q, Classifier: cls})
		if err != nil {
			return err
		}
		result["report"], result["metrics"] = abs(filepath.Join(*out, "index.html")), res
	}
	if *jsonOut {
		raw, err := json.Marshal(result)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(raw))
		return nil
	}
	if q != nil {
		printQuality(stdout, q)
		fmt.Fprintf(stdout, "quality: %s, %s\n", result["quality_json"], result["quality_page"])
	}
	if res != nil {
		printStudy(stdout, res)
		fmt.Fprintf(stdout, "report: %s\n", result["report"])
	}
	return nil
}

// measureQuality renders the samples and real images once, reads them with
// the judge and, for fundus models, counts optic discs with the segmenter
// (a model without one gets no artefact rate, and says so).
func measureQuality(ws *workspace.Workspace, name string, judge evaluate.Judge, opt evaluate.QualityOptions, log io.Writer) (*evaluate.Quality, error) {
	im, err := evaluate.RenderQualityImages(ws.Model, opt)
	if err != nil {
		return nil, err
	}
	q, err := evaluate.MeasureQuality(ws.Model, judge, im, opt)
	if err != nil {
		return nil, err
	}
	q.Model = name
	if ws.Model.Info.Dataset == "fundus" {
		q.Artefacts, err = pseudocase.MeasureArtefacts(ws, im, log, opt.JSON)
		if errors.Is(err, pseudocase.ErrNoSegmenter) {
			fmt.Fprintf(log, "quality: no artefact rate: %v\n", err)
		} else if err != nil {
			return nil, err
		}
		q.CheckTargets()
	}
	return q, nil
}

// flagSet reports whether the command line set flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// printQuality prints a quality measurement for people: the summary, the
// targets, then the factor and mode tables.
func printQuality(w io.Writer, q *evaluate.Quality) {
	fmt.Fprintf(w, "quality of %s (%s on %s): %d samples vs %d real images, judged by the %s (%d steps, %d px)\n",
		q.Model, q.Kind, q.Dataset, q.N, q.N, q.Judge.Kind, q.Judge.Steps, q.Judge.Size)
	if a := q.Judge.TestAccuracy; a != nil {
		fmt.Fprintf(w, "classifier test accuracy %.4f\n", *a)
	}
	fmt.Fprintf(w, "Fréchet %.4f, real vs real %.4f: ratio %.2f\n", q.Frechet, q.FrechetReal, q.FrechetRatio)
	fmt.Fprintf(w, "precision %.3f, recall %.3f (k %d; real vs real %.3f, %.3f)\n", q.Precision, q.Recall, q.K, q.PrecisionReal, q.RecallReal)
	if a := q.Artefacts; a != nil {
		fmt.Fprintf(w, "retinas with ≠ 1 optic disc: samples %.1f%%, real %.1f%% (%s, ≥ %d px)\n", 100*a.Sample, 100*a.Data, a.Judge, a.MinArea)
	}
	if p := q.ReconstructionPSNR; p != nil {
		fmt.Fprintf(w, "reconstruction PSNR %.2f dB\n", *p)
	}
	if len(q.Factors) > 0 {
		fmt.Fprintf(w, "\n%-14s %7s %9s %9s %7s %8s %8s\n", "factor", "spread", "data", "samples", "W1", "W1 real", "W1 judge")
		for _, f := range q.Factors {
			fmt.Fprintf(w, "%-14s %7.3f %9.3f %9.3f %7.3f %8.3f %8s\n", f.Name, f.Spread, f.DataMean, f.SampleMean, f.W1, f.W1Real, fmtNull(f.W1Judge))
		}
	}
	if len(q.Modes) > 0 {
		fmt.Fprintf(w, "\n%-24s %-14s %7s %7s %7s %8s\n", "mode", "bin", "data", "labels", "sample", "rel")
		for _, m := range q.Modes {
			fmt.Fprintf(w, "%-24s %-14s %7.3f %7s %7.3f %8s\n", m.Group, m.Bin, m.Data, fmtNull(m.Truth), m.Sample, fmtNull(m.RelDiff))
		}
	}
	if len(q.Checks) > 0 {
		fmt.Fprintln(w, "\ntargets:")
		for _, c := range q.Checks {
			mark := "FAIL"
			if c.Pass {
				mark = "pass"
			}
			fmt.Fprintf(w, "  %s  %-62s %8s  %s\n", mark, c.Target, fmtNull(c.Value), c.Want)
			if c.Note != "" {
				fmt.Fprintf(w, "        %s\n", c.Note)
			}
		}
		fmt.Fprintf(w, "all targets met: %v\n", q.Pass)
	}
}

// printStudy prints the table of the report.
func printStudy(w io.Writer, res *study.Results) {
	fmt.Fprintf(w, "%-14s %-12s %6s %7s %7s %7s %9s %9s %9s %8s\n", "editor", "method", "RCA", "effect", "leak", "ident", "comm-lat", "comm-img", "comm-att", "FD-edit")
	for _, r := range res.Editors {
		fmt.Fprintf(w, "%-14s %-12s %6s %7s %7s %7s %9.2e %9.4f %9.4f %8.3f\n", r.Name, r.Method, fmtNull(r.RCA), fmtNull(r.MeanEffect),
			fmtNull(r.MeanLeakage), fmtNull(r.MeanIdentity), r.Commutativity.Latent, r.Commutativity.Image, r.Commutativity.AttributeMean, r.Frechet)
	}
	fmt.Fprintf(w, "Fréchet: samples %.3f, real vs real %.3f\n", res.FrechetSamples, res.FrechetReal)
	if res.ClassesRead() {
		var kept []string
		for _, r := range res.Editors {
			kept = append(kept, r.Name+" "+fmtNull(r.MeanClassKept))
		}
		fmt.Fprintf(w, "class kept by the matched edits (classifier): %s\n", strings.Join(kept, ", "))
	}
}

func fmtNull(p *float64) string {
	if p == nil {
		return "—"
	}
	return fmt.Sprintf("%.3f", *p)
}
