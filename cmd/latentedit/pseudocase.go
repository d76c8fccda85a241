package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"latentedit/edit"
	"latentedit/pseudocase"
	"latentedit/workspace"
)

// runPseudocase adds lesions to generated retinas and measures what stayed:
// the oracle's reading of every lesion factor before and after, the vessel
// Dice outside the lesion area and the optic-disc shift. With
// --train-segmenter it trains the structure model instead; with
// --report-runs it writes the HTML page of finished runs.
func runPseudocase(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pseudocase", stderr)
	model := fs.String("model", "", "model directory or embedded model name (required)")
	add := fs.String("add", "", "lesions to add: detachment:EXTENT[@DEGREES],haemorrhage:COUNT,cup:RATIO (e.g. detachment:0.6@45,haemorrhage:3)")
	n := fs.Int("n", 500, "pseudo-cases in the whole run (all shards together)")
	seed := fs.Int64("seed", 1, "case i edits the latent of seed SEED+i")
	out := fs.String("out", "", "output directory (required)")
	shard := fs.String("shard", "", "i/N: make only part i of N of the cases (parts concatenate to the whole)")
	editor := fs.String("editor", "interfacegan", "editor to move the latents with")
	maxStep := fs.Float64("max-step", 6, "largest |step| along one direction")
	calN := fs.Int("calibration-n", 64, "latents to calibrate an editor on when it has no calibration yet")
	oracleSteps := fs.Int("oracle-steps", 600, "steps to train the oracle if the model has none")
	trainSeg := fs.Bool("train-segmenter", false, "train the vessel/lesion/disc segmenter into work/MODEL/pseudocase and exit")
	segSteps := fs.Int("segmenter-steps", 500, "--train-segmenter: Adam steps")
	segN := fs.Int("segmenter-n", 2000, "--train-segmenter: rendered training images")
	segResume := fs.Bool("resume", false, "--train-segmenter: continue the killed or shorter run in work/MODEL/pseudocase/segmenter-run")
	fit := fs.String("fit-interfacegan", "", "fit an InterFaceGAN editor of this name whose lesion directions keep the other lesions and the optic-disc position (read by the segmenter), then exit")
	fitN := fs.Int("samples", 1500, "--fit-interfacegan: latents labelled")
	reportRuns := fs.String("report-runs", "", "comma-separated finished run directories: write pseudocases.html into --out and exit")
	backend := fs.String("backend", "", "go (CPU) or xla:/abs/path/plugin.so")
	jsonOut := fs.Bool("json", false, "progress and result as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *reportRuns != "" {
		if *out == "" {
			return errUsage{fmt.Errorf("--out is required")}
		}
		if err := pseudocase.WriteReport(*out, strings.Split(*reportRuns, ",")); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "report: %s\n", filepath.Join(*out, pseudocase.ReportFile))
		return nil
	}
	if *model == "" {
		return errUsage{fmt.Errorf("--model is required")}
	}
	var req pseudocase.Request
	var sh pseudocase.Shard
	if !*trainSeg && *fit == "" {
		var err error
		if req, err = pseudocase.ParseRequest(*add); err != nil {
			return errUsage{err}
		}
		if sh, err = pseudocase.ParseShard(*shard); err != nil {
			return errUsage{err}
		}
		if *out == "" {
			return errUsage{fmt.Errorf("--out is required")}
		}
		if *n < 1 || !(*maxStep > 0) || *calN < 1 {
			return errUsage{fmt.Errorf("--n and --calibration-n must be ≥ 1 and --max-step > 0")}
		}
	}
	ws, err := workspace.Open(*model, *backend)
	if err != nil {
		return err
	}
	if *trainSeg {
		dir := filepath.Join(ws.Work, pseudocase.Dir)
		s, err := pseudocase.TrainSegmenter(ws.Model.Backend(), pseudocase.SegmenterOptions{N: *segN, Steps: *segSteps, Seed: 1,
			Dir: filepath.Join(dir, pseudocase.SegmenterRun), Resume: *segResume, Log: stderr, JSON: *jsonOut})
		if err != nil {
			return err
		}
		if err := s.Save(dir); err != nil {
			return err
		}
		return printResult(stdout, *jsonOut, map[string]any{"segmenter": dir, "held_out_dice": s.Dice, "held_out_disc_error_px": s.DiscErrPx},
			fmt.Sprintf("segmenter in %s; held-out Dice %v, disc error %s", dir, s.Dice, discError(s.DiscErrPx)))
	}
	if *fit != "" {
		dir, ok := pseudocase.SegmenterDir(ws)
		if !ok {
			return fmt.Errorf("%w in %s: run --train-segmenter first", pseudocase.ErrNoSegmenter, dir)
		}
		seg, err := pseudocase.LoadSegmenter(dir, ws.Model.Backend())
		if err != nil {
			return err
		}
		orc, err := ws.Oracle(*oracleSteps, stderr)
		if err != nil {
			return err
		}
		e, err := pseudocase.FitInterFaceGAN(ws.Model, orc, seg, *fitN, *seed, stderr)
		if err != nil {
			return err
		}
		out := ws.NewEditorDir(*fit)
		if err := edit.Save(out, e, map[string]any{"samples": *fitN, "labels": "oracle factors + segmenter disc centre"}); err != nil {
			return err
		}
		return printResult(stdout, *jsonOut, map[string]any{"editor": out, "names": e.Names()}, fmt.Sprintf("%s: %d directions %v", out, e.K(), e.Names()))
	}
	tools, err := pseudocase.Load(ws, *editor, *oracleSteps, *calN, stderr)
	if err != nil {
		return err
	}
	sum, err := pseudocase.Run(tools, pseudocase.Options{Request: req, N: *n, Seed: *seed, Shard: sh, Out: *out, MaxStep: *maxStep, Log: stderr, JSON: *jsonOut})
	if err != nil {
		return err
	}
	shift := "n/a"
	if sum.DiscShift != nil {
		shift = fmt.Sprintf("%.2f px", *sum.DiscShift)
	}
	var moved []string
	for _, f := range sum.Factors {
		if tg, ok := sum.Target[f]; ok {
			moved = append(moved, fmt.Sprintf("%s %.3f→%.3f (target %.3f)", f, sum.Before[f], sum.After[f], tg))
		}
	}
	return printResult(stdout, *jsonOut, sum, fmt.Sprintf("%d pseudo-cases in %s with %s: %s; vessel Dice outside lesions %.3f, disc shift %s",
		sum.Cases, *out, sum.Editor, strings.Join(moved, ", "), sum.VesselDice, shift))
}

func printResult(w io.Writer, asJSON bool, v any, text string) error {
	if !asJSON {
		fmt.Fprintln(w, text)
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, string(raw))
	return nil
}

func discError(px *float64) string {
	if px == nil {
		return "unknown (no disc found)"
	}
	return fmt.Sprintf("%.2f px", *px)
}
