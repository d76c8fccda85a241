package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"latentedit/edit"
	"latentedit/invert"
	"latentedit/pseudocase"
	"latentedit/workspace"
)

// pseudocaseArgs are the flags of `latentedit pseudocase`, parsed and
// checked as far as can be done without opening the model.
type pseudocaseArgs struct {
	model, editor, out, backend string
	req                         pseudocase.Request
	shard                       pseudocase.Shard
	n, calN, oracleSteps        int
	seed                        int64
	maxStep                     float64
	trainSeg, segResume         bool
	segSteps, segN, fitN        int
	seg                         pseudocase.SegmenterOptions
	checkSeg                    int
	checkSegSeed                int64
	fit                         string
	reportRuns, merge           []string
	json                        bool
	image                       string
	invertSteps                 int
	region                      *pseudocase.RegionOptions
	mask                        string
}

// parsePseudocase reads the flags; a bad command line is an errUsage. The
// deploy manifests' test parses their command lines with it.
func parsePseudocase(args []string, stderr io.Writer) (*pseudocaseArgs, error) {
	fs := newFlags("pseudocase", stderr)
	model := fs.String("model", "", "model directory or embedded model name (required)")
	add := fs.String("add", "", "lesions to add: detachment:EXTENT[@DEGREES],haemorrhage:COUNT,cup:RATIO (e.g. detachment:0.6@45,haemorrhage:3)")
	n := fs.Int("n", 500, "pseudo-cases in the whole run (all shards together)")
	seed := fs.Int64("seed", 1, "case i edits the latent of seed SEED+i")
	out := fs.String("out", "", "output directory (required)")
	shard := fs.String("shard", "", "i/N: make only part i of N of the cases (parts concatenate to the whole; --merge joins them)")
	editor := fs.String("editor", "interfacegan", "editor to move the latents with")
	maxStep := fs.Float64("max-step", 6, "largest |step| along one direction")
	calN := fs.Int("calibration-n", 64, "latents to calibrate an editor on when it has no calibration yet")
	oracleSteps := fs.Int("oracle-steps", 600, "steps to train the oracle if the model has none")
	trainSeg := fs.Bool("train-segmenter", false, "train the vessel/lesion/disc segmenter into work/MODEL/pseudocase and exit")
	segSteps := fs.Int("segmenter-steps", 2200, "--train-segmenter: Adam steps")
	segN := fs.Int("segmenter-n", 2000, "--train-segmenter: rendered training images")
	segResume := fs.Bool("resume", false, "--train-segmenter: continue the killed or shorter run in work/MODEL/pseudocase/segmenter-run (same recipe)")
	var seg pseudocase.SegmenterOptions
	fs.IntVar(&seg.Width, "segmenter-width", 0, "--train-segmenter: channels at full resolution (0: the default)")
	fs.IntVar(&seg.Levels, "segmenter-levels", 0, "--train-segmenter: stride-2 levels of the U-Net (0: the default)")
	fs.IntVar(&seg.Blocks, "segmenter-blocks", 0, "--train-segmenter: 3×3 convolutions per block (0: the default)")
	fs.IntVar(&seg.Batch, "segmenter-batch", 0, "--train-segmenter: images per step (0: the default)")
	fs.Float64Var(&seg.LR, "segmenter-lr", 0, "--train-segmenter: Adam learning rate (0: the default)")
	fs.StringVar(&seg.Loss, "segmenter-loss", "", "--train-segmenter: "+pseudocase.LossBCE+" or "+pseudocase.LossBCEDice+" (empty: the default)")
	fs.Var(&seg.Schedule, "segmenter-schedule", "--train-segmenter: learning-rate schedule: constant, step:AT:FACTOR, cosine[:FINAL], each +warmup:N optional")
	checkSeg := fs.String("check-segmenter", "", "N@SEED: score the model's segmenter on N fundus renders of SEED (777: the real set of evaluate --quality) and exit")
	fit := fs.String("fit-interfacegan", "", "fit an InterFaceGAN editor of this name whose lesion directions keep the other lesions and the optic-disc position (read by the segmenter), then exit")
	fitN := fs.Int("samples", 1500, "--fit-interfacegan: latents labelled")
	reportRuns := fs.String("report-runs", "", "comma-separated finished run directories: write pseudocases.html into --out and exit")
	merge := fs.String("merge", "", "comma-separated directories holding all the shards of one --shard run: check them, write the whole run into --out (a new directory) and exit")
	image := fs.String("image", "", "a fundus photograph (PNG/JPEG), or a directory of them: each is checked, inverted into the editor's space and edited; cases are scored against the picture (--n and --seed unused)")
	invertSteps := fs.Int("invert-steps", 100, "--image: refinement steps of the inversion")
	region := fs.Bool("region", false, "region-constrained editing: build each lesion's region (a detachment needs @DEGREES), refine the edit so the lesion appears inside it and the rest stays the original's, and score a feathered composite beside it")
	ro := pseudocase.DefaultRegionOptions()
	mask := fs.String("mask", "", "--region: a PNG/JPEG, white where lesions may go (the model's size, or the --image pictures' size); haemorrhages go there instead of anywhere in the field")
	fs.IntVar(&ro.Steps, "region-steps", ro.Steps, "--region: Adam steps of the refinement (0: the editor's step alone)")
	fs.Float64Var(&ro.LR, "region-lr", ro.LR, "--region: learning rate of the refinement")
	fs.Float64Var(&ro.Keep, "region-keep", ro.Keep, "--region: weight of the pixel error outside the region")
	fs.Float64Var(&ro.Goal, "region-goal", ro.Goal, "--region: weight of the oracle's error to the request")
	fs.Float64Var(&ro.Structure, "region-structure", ro.Structure, "--region: weight of the segmenter's vessels and disc outside the region")
	fs.Float64Var(&ro.Realism, "region-realism", ro.Realism, "--region: weight of the GAN's own discriminator's loss (needs a model that ships its discriminator; its reading is reported whenever it does)")
	fs.IntVar(&ro.Margin, "region-margin", ro.Margin, "--region: pixels the region is grown by")
	fs.Float64Var(&ro.Feather, "feather", ro.Feather, "--region: σ in pixels of the composite's soft edge")
	backend := fs.String("backend", "", "go (CPU) or xla:/abs/path/plugin.so")
	jsonOut := fs.Bool("json", false, "progress and result as JSON")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	a := &pseudocaseArgs{model: *model, editor: *editor, out: *out, backend: *backend, n: *n, calN: *calN, oracleSteps: *oracleSteps,
		seed: *seed, maxStep: *maxStep, trainSeg: *trainSeg, segResume: *segResume, segSteps: *segSteps, segN: *segN, fitN: *fitN,
		fit: *fit, json: *jsonOut, seg: seg, image: *image, invertSteps: *invertSteps}
	if *checkSeg != "" {
		ns, ss, ok := strings.Cut(*checkSeg, "@")
		n, err1 := strconv.Atoi(ns)
		sd, err2 := strconv.ParseInt(ss, 10, 64)
		if !ok || err1 != nil || err2 != nil || n < 1 {
			return nil, errUsage{fmt.Errorf("--check-segmenter %q: want N@SEED, N ≥ 1 (e.g. 1000@777)", *checkSeg)}
		}
		a.checkSeg, a.checkSegSeed = n, sd
	}
	if *reportRuns != "" || *merge != "" {
		if *reportRuns != "" && *merge != "" {
			return nil, errUsage{fmt.Errorf("--report-runs and --merge are two commands: give one")}
		}
		if *out == "" {
			return nil, errUsage{fmt.Errorf("--out is required")}
		}
		if *reportRuns != "" {
			a.reportRuns = strings.Split(*reportRuns, ",")
		} else {
			a.merge = strings.Split(*merge, ",")
		}
		return a, nil
	}
	if *model == "" {
		return nil, errUsage{fmt.Errorf("--model is required")}
	}
	if !*trainSeg && *fit == "" && a.checkSeg == 0 {
		var err error
		if a.req, err = pseudocase.ParseRequest(*add); err != nil {
			return nil, errUsage{err}
		}
		if a.shard, err = pseudocase.ParseShard(*shard); err != nil {
			return nil, errUsage{err}
		}
		if *out == "" {
			return nil, errUsage{fmt.Errorf("--out is required")}
		}
		if *n < 1 || !(*maxStep > 0) || *calN < 1 {
			return nil, errUsage{fmt.Errorf("--n and --calibration-n must be ≥ 1 and --max-step > 0")}
		}
		if *image != "" && *shard != "" {
			return nil, errUsage{fmt.Errorf("--image makes a whole run: no --shard")}
		}
		if *invertSteps < 0 {
			return nil, errUsage{fmt.Errorf("--invert-steps must be ≥ 0")}
		}
		if *region {
			if err := ro.Validate(); err != nil {
				return nil, errUsage{err}
			}
			for _, l := range a.req {
				if l.Kind == pseudocase.Detachment && !l.HasAngle {
					return nil, errUsage{fmt.Errorf("--region: a region edit needs the detachment's position: detachment:%g@DEGREES", l.Amount)}
				}
			}
			a.region, a.mask = &ro, *mask
		} else if *mask != "" {
			return nil, errUsage{fmt.Errorf("--mask is a region: it needs --region")}
		}
	}
	return a, nil
}

// runPseudocase adds lesions to generated retinas and measures what stayed:
// the oracle's reading of every lesion factor before and after, the vessel
// Dice outside the lesion area and the optic-disc shift. With
// --train-segmenter it trains the structure model instead; with
// --report-runs it writes the HTML page of finished runs; with --merge it
// joins the shards of a run.
func runPseudocase(args []string, stdout, stderr io.Writer) error {
	a, err := parsePseudocase(args, stderr)
	if err != nil {
		return err
	}
	if a.reportRuns != nil {
		if err := pseudocase.WriteReport(a.out, a.reportRuns); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "report: %s\n", filepath.Join(a.out, pseudocase.ReportFile))
		return nil
	}
	if a.merge != nil {
		sum, err := pseudocase.Merge(a.out, a.merge)
		if err != nil {
			return err
		}
		return printResult(stdout, a.json, sum, fmt.Sprintf("%d cases merged from %s into %s (seconds: the shards' sum, %.1f)",
			sum.Cases, strings.Join(a.merge, ", "), a.out, sum.Seconds))
	}
	ws, err := workspace.Open(a.model, a.backend)
	if err != nil {
		return err
	}
	if a.trainSeg {
		dir := filepath.Join(ws.Work, pseudocase.Dir)
		opt := a.seg
		opt.N, opt.Steps, opt.Seed, opt.Dir, opt.Resume, opt.Log, opt.JSON = a.segN, a.segSteps, 1, filepath.Join(dir, pseudocase.SegmenterRun), a.segResume, stderr, a.json
		s, err := pseudocase.TrainSegmenter(ws.Model.Backend(), opt)
		if err != nil {
			return err
		}
		if err := s.Save(dir); err != nil {
			return err
		}
		return printResult(stdout, a.json, map[string]any{"segmenter": dir, "held_out_dice": s.Dice, "held_out_disc_error_px": s.DiscErrPx,
			"held_out_not_one_disc": s.NotOneDisc, "recipe": s.Recipe},
			fmt.Sprintf("segmenter in %s; held-out Dice %v, disc error %s, ≠ 1 disc in %.1f%%", dir, s.Dice, discError(s.DiscErrPx), 100*s.NotOneDisc))
	}
	if a.checkSeg > 0 {
		dir, seg, err := shippedSegmenter(ws)
		if err != nil {
			return err
		}
		sc, err := seg.Measure(a.checkSeg, a.checkSegSeed)
		if err != nil {
			return err
		}
		return printResult(stdout, a.json, sc, fmt.Sprintf("segmenter %s on %d renders of seed %d: Dice vessels %.4f, lesions %.4f, disc %.4f; disc error %s; ≠ 1 disc in %.1f%% (counts 0/1/2/≥3: %v)",
			dir, sc.N, sc.Seed, sc.Dice["vessels"], sc.Dice["lesions"], sc.Dice["disc"], discError(sc.DiscErrPx), 100*sc.NotOneDisc, sc.DiscCounts))
	}
	if a.fit != "" {
		_, seg, err := shippedSegmenter(ws)
		if err != nil {
			return err
		}
		orc, err := ws.Oracle(a.oracleSteps, stderr)
		if err != nil {
			return err
		}
		e, err := pseudocase.FitInterFaceGAN(ws.Model, orc, seg, a.fitN, a.seed, stderr)
		if err != nil {
			return err
		}
		out := ws.NewEditorDir(a.fit)
		if err := edit.Save(out, e, map[string]any{"samples": a.fitN, "labels": "oracle factors + segmenter disc centre"}); err != nil {
			return err
		}
		return printResult(stdout, a.json, map[string]any{"editor": out, "names": e.Names()}, fmt.Sprintf("%s: %d directions %v", out, e.K(), e.Names()))
	}
	tools, err := pseudocase.Load(ws, a.editor, a.oracleSteps, a.calN, stderr)
	if err != nil {
		return err
	}
	opt := pseudocase.Options{Request: a.req, N: a.n, Seed: a.seed, Shard: a.shard, Out: a.out, MaxStep: a.maxStep, Log: stderr, JSON: a.json}
	if a.image != "" {
		// Every picture is read and checked before anything is inverted or
		// written: a bad one leaves no partial run.
		inv, err := inverterFor(ws, tools.Model, false)
		if err != nil {
			return err
		}
		h, w, c := tools.Model.ImageShape()
		pics, err := invert.ReadPictures(a.image, h, w, c)
		if err != nil {
			return fmt.Errorf("--image: %w", err)
		}
		if opt.Pictures, err = pseudocase.InvertGiven(tools, inv, pics, a.invertSteps, stderr); err != nil {
			return fmt.Errorf("--image: %w", err)
		}
	}
	if a.region != nil {
		opt.Region = a.region
		if a.mask != "" {
			var pics []invert.Picture
			for _, g := range opt.Pictures {
				pics = append(pics, invert.Picture{Path: g.Path, Crop: g.Crop})
			}
			h, _, _ := tools.Model.ImageShape()
			if opt.Region.Mask, err = pseudocase.ReadMask(a.mask, h, pics); err != nil {
				return err
			}
			opt.Region.MaskPath = filepath.Base(a.mask)
		}
	}
	sum, err := pseudocase.Run(tools, opt)
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
	var goals []string
	for _, part := range slices.Sorted(maps.Keys(sum.GoalMet)) {
		goals = append(goals, fmt.Sprintf("%s %.0f%%", part, 100*sum.GoalMet[part]))
	}
	inverted := ""
	if sum.InversionPSNR != nil {
		inverted = fmt.Sprintf("; %d given pictures, inversions at %.2f dB PSNR, vessel Dice %.3f against the pictures", sum.Pictures, *sum.InversionPSNR, *sum.InversionDice)
	}
	if r := sum.Region; r != nil {
		var cg []string
		for _, part := range slices.Sorted(maps.Keys(r.Composite.GoalMet)) {
			cg = append(cg, fmt.Sprintf("%s %.0f%%", part, 100*r.Composite.GoalMet[part]))
		}
		inverted += fmt.Sprintf("; region %.1f%% of the picture, PSNR outside it %.2f → %.2f dB (editor step → refined), seam %.2f× real borders (composite %.2f×); composite: within tolerance %s (all %.0f%%), vessel Dice %.3f",
			100*r.Area, r.KeepPSNRStart, r.KeepPSNR, r.SeamRatio, r.SeamRatioComposite, strings.Join(cg, ", "), 100*r.Composite.AllGoalsMet, r.Composite.VesselDice)
		if r.FrechetRatio != nil {
			inverted += fmt.Sprintf("; Fréchet against real retinas with the lesions %.2f× real-vs-real (composite %.2f×)", *r.FrechetRatio, *r.FrechetRatioComp)
		}
		if r.Realism != nil {
			inverted += fmt.Sprintf("; discriminator loss %.3f → %.3f (ln 2 = 0.693 is undecided)", *r.RealismStart, *r.Realism)
		}
	}
	return printResult(stdout, a.json, sum, fmt.Sprintf("%d pseudo-cases in %s with %s: %s; within tolerance: %s (all %.0f%%); vessel Dice outside lesions %.3f, disc shift %s%s",
		sum.Cases, a.out, sum.Editor, strings.Join(moved, ", "), strings.Join(goals, ", "), 100*sum.AllGoalsMet, sum.VesselDice, shift, inverted))
}

// shippedSegmenter loads the model's segmenter (work folder, then shipped).
func shippedSegmenter(ws *workspace.Workspace) (string, *pseudocase.Segmenter, error) {
	dir, ok := pseudocase.SegmenterDir(ws)
	if !ok {
		return dir, nil, fmt.Errorf("%w in %s: run --train-segmenter first", pseudocase.ErrNoSegmenter, dir)
	}
	seg, err := pseudocase.LoadSegmenter(dir, ws.Model.Backend())
	return dir, seg, err
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
