package main

import (
	"encoding/json"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"

	"latentedit/dataset"
	"latentedit/generator"
	"latentedit/internal/atomicfile"
	"latentedit/internal/figure"
	"latentedit/invert"
	"latentedit/workspace"
)

// Files `invert --image` writes into --out.
const (
	inversionsFile = "inversions.json"
	inversionsGrid = "inversions.png"
)

// defaultSpace is the space a model is inverted into unless --space says
// otherwise: W+ for a style generator, Z for the others.
func defaultSpace(m *generator.Model) string {
	for _, s := range m.Spaces() {
		if s == generator.SpaceWPlus {
			return s
		}
	}
	return generator.SpaceZ
}

// invertModel opens the workspace's model in space ("": the default) and
// its encoder for that space when one was trained (unless noEncoder).
func invertModel(ws *workspace.Workspace, space string, noEncoder bool) (*invert.Inverter, error) {
	if space == "" {
		space = defaultSpace(ws.Model)
	}
	m, err := ws.Model.InSpace(space)
	if err != nil {
		return nil, err
	}
	return inverterFor(ws, m, noEncoder)
}

// inverterFor is the inverter of m (in its space) with the encoder trained
// for it, if the workspace has one.
func inverterFor(ws *workspace.Workspace, m *generator.Model, noEncoder bool) (*invert.Inverter, error) {
	var enc *invert.Encoder
	if dir, ok := invert.LocateEncoder(m.Space(), ws.Work, ws.Shipped); ok && !noEncoder && m.Info.Kind == "gan" {
		var err error
		if enc, err = invert.LoadEncoder(dir, m); err != nil {
			return nil, err
		}
	}
	return invert.New(m, enc)
}

func runInvert(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("invert", stderr)
	model := fs.String("model", "", "model directory or embedded model name (required)")
	space := fs.String("space", "", "latent space to invert into: z, w or w+ (default: w+ for a style generator, z otherwise)")
	trainEnc := fs.Bool("train-encoder", false, "train the model's encoder for --space into WORK/encoder-SPACE and exit")
	steps := fs.Int("steps", 0, "--train-encoder: training steps (default 2000); otherwise: refinement steps of Adam on the latent (default 100)")
	batch := fs.Int("batch", 32, "--train-encoder: batch size")
	lr := fs.Float64("lr", 0, "--train-encoder: Adam's rate (default 1e-3); otherwise the refinement's (default 0.05)")
	recon := fs.Float64("recon", 0, "--train-encoder: weight of a reconstruction loss on the model's training pictures through the frozen generator (0: none)")
	resume := fs.Bool("resume", false, "--train-encoder: continue the killed or shorter run")
	imgPath := fs.String("image", "", "a PNG/JPEG, or a directory of them, to invert (any size: centre-cropped and resized)")
	out := fs.String("out", "", "--image: output directory (inversions.json, inversions.png)")
	measure := fs.Int("measure", 0, "fidelity on N held-out renders of the model's dataset: encoder alone vs encoder + refinement")
	baseline := fs.Bool("baseline", true, "--measure: also refine from seeded starts (the inversion without an encoder), for comparison")
	noEnc := fs.Bool("no-encoder", false, "start from seeded latents even when the model has an encoder")
	prior := fs.Float64("prior", 0, "weight of the refinement's pull towards the prior (default 1e-3; negative: none)")
	backend := fs.String("backend", "", "go (CPU) or xla:/abs/path/plugin.so")
	jsonOut := fs.Bool("json", false, "progress and result as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	modes := 0
	for _, on := range []bool{*trainEnc, *imgPath != "", *measure > 0} {
		if on {
			modes++
		}
	}
	switch {
	case *model == "":
		return errUsage{fmt.Errorf("--model is required")}
	case modes != 1:
		return errUsage{fmt.Errorf("give one of --train-encoder, --image FILE|DIR or --measure N")}
	case *imgPath != "" && *out == "":
		return errUsage{fmt.Errorf("--image needs --out")}
	case *steps < 0 || *measure < 0 || *recon < 0:
		return errUsage{fmt.Errorf("--steps, --measure and --recon must be ≥ 0")}
	}
	if _, err := generator.ParseSpace(*space); err != nil {
		return errUsage{fmt.Errorf("--space: %w", err)}
	}
	ws, err := workspace.Open(*model, *backend)
	if err != nil {
		return err
	}
	if *trainEnc {
		sp := *space
		if sp == "" {
			sp = defaultSpace(ws.Model)
		}
		m, err := ws.Model.InSpace(sp)
		if err != nil {
			return err
		}
		if m.Info.Kind != "gan" {
			return fmt.Errorf("--train-encoder: model %s is a %s, which has its own encoder", m.Dir, m.Info.Kind)
		}
		dir := filepath.Join(ws.Work, invert.EncoderDirName(m.Space()))
		e, _, err := invert.TrainEncoder(m, invert.TrainConfig{Steps: *steps, Batch: *batch, LR: *lr, Recon: *recon},
			invert.TrainOptions{Dir: dir, Resume: *resume, Log: stderr, JSON: *jsonOut})
		if err != nil {
			return err
		}
		return printResult(stdout, *jsonOut, map[string]any{"encoder": dir, "space": m.Space(), "steps": e.Steps, "held_out": e.HeldOut},
			fmt.Sprintf("encoder for %s in %s: %s (%d steps); on %d held-out latents: latent MSE %.4f, PSNR of G(E(G(z))) %.2f dB",
				m.Dir, m.Space(), dir, e.Steps, e.HeldOut.N, e.HeldOut.LatentMSE, e.HeldOut.PSNR))
	}
	inv, err := invertModel(ws, *space, *noEnc)
	if err != nil {
		return err
	}
	opt := invert.Options{Steps: *steps, LR: *lr, Prior: *prior}
	if opt.Steps == 0 {
		opt.Steps = 100
	}
	if *measure > 0 {
		return runInvertMeasure(ws, inv, *measure, opt, *baseline, stdout, stderr, *jsonOut)
	}
	m := inv.Model()
	h, w, c := m.ImageShape()
	pics, err := invert.ReadPictures(*imgPath, h, w, c)
	if err != nil {
		return fmt.Errorf("--image: %w", err)
	}
	fits, err := invertPictures(inv, pics, opt, stderr, *jsonOut)
	if err != nil {
		return err
	}
	if err := writeInversions(*out, inv, pics, fits); err != nil {
		return err
	}
	mean := 0.0
	for _, f := range fits {
		mean += f.PSNR / float64(len(fits))
	}
	return printResult(stdout, *jsonOut, map[string]any{"out": *out, "pictures": len(fits), "space": m.Space(), "guess": inv.Guesser(), "mean_psnr_db": mean},
		fmt.Sprintf("inverted %d pictures into %s of %s (start: %s, %d steps); mean PSNR %.2f dB; wrote %s and %s",
			len(fits), m.Space(), m.Dir, inv.Guesser(), opt.Steps, mean, filepath.Join(*out, inversionsFile), filepath.Join(*out, inversionsGrid)))
}

// invertChunk is how many pictures one inversion batch holds.
const invertChunk = 16

// invertPictures inverts pics in chunks, with a progress line per chunk.
func invertPictures(inv *invert.Inverter, pics []invert.Picture, opt invert.Options, log io.Writer, jsonLines bool) ([]invert.Result, error) {
	var fits []invert.Result
	for s := 0; s < len(pics); s += invertChunk {
		e := min(len(pics), s+invertChunk)
		var px [][]float32
		for _, p := range pics[s:e] {
			px = append(px, p.Pixels)
		}
		fs, err := inv.Invert(px, opt, invert.Hooks{})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pics[s].Path, err)
		}
		fits = append(fits, fs...)
		if jsonLines {
			fmt.Fprintf(log, `{"inverted":%d,"of":%d}`+"\n", e, len(pics))
		} else {
			fmt.Fprintf(log, "inverted %d of %d\n", e, len(pics))
		}
	}
	return fits, nil
}

// inversionRecord is one entry of inversions.json.
type inversionRecord struct {
	Path      string      `json:"path"`
	Crop      invert.Crop `json:"crop"`
	Space     string      `json:"space"`
	Guess     string      `json:"guess"`
	PSNR      float64     `json:"psnr_db"`
	GuessPSNR float64     `json:"guess_psnr_db"`
	Steps     int         `json:"steps"`
	Latent    []float32   `json:"latent"`
}

// writeInversions writes OUT/inversions.json and the grid (input |
// inversion), each atomically, after every picture is inverted.
func writeInversions(out string, inv *invert.Inverter, pics []invert.Picture, fits []invert.Result) error {
	m := inv.Model()
	h, w, c := m.ImageShape()
	var recs []inversionRecord
	var flat []float32
	for i, f := range fits {
		recs = append(recs, inversionRecord{Path: pics[i].Path, Crop: pics[i].Crop, Space: m.Space(), Guess: inv.Guesser(),
			PSNR: f.PSNR, GuessPSNR: f.GuessPSNR, Steps: f.Steps, Latent: f.Latent})
		flat = append(flat, f.Latent...)
	}
	pix, err := m.GenerateFloats(flat, len(fits))
	if err != nil {
		return err
	}
	var cells []image.Image
	sz := h * w * c
	for i := range fits {
		cells = append(cells, dataset.FromFloats(pics[i].Pixels, h, w, c), dataset.FromFloats(pix[i*sz:(i+1)*sz], h, w, c))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(map[string]any{"model": m.Dir, "space": m.Space(), "pictures": recs}, "", "  ")
	if err != nil {
		return err
	}
	if err := figure.Grid(filepath.Join(out, inversionsGrid), cells, 2, 256); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(out, inversionsFile), append(raw, '\n'), atomicfile.DefaultPerm)
}
