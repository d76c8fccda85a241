package main

import (
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"os"
	"strconv"
	"strings"

	"latentedit/edit"
	"latentedit/generator"
	"latentedit/internal/atomicfile"
	"latentedit/invert"
	"latentedit/report/editgrid"
	"latentedit/server"
	"latentedit/workspace"
)

// parseSeq parses "3:+2,smile:-1.5" against an editor's directions.
func parseSeq(e edit.Editor, s string) ([]edit.Step, error) {
	var steps []edit.Step
	if s == "" {
		return nil, fmt.Errorf("--seq is empty")
	}
	for _, part := range strings.Split(s, ",") {
		dir, amount, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("--seq: %q is not direction:amount", part)
		}
		k, err := edit.Direction(e, dir)
		if err != nil {
			return nil, fmt.Errorf("--seq: %w", err)
		}
		t, err := strconv.ParseFloat(amount, 32)
		if err != nil {
			return nil, fmt.Errorf("--seq: amount %q: %w", amount, err)
		}
		steps = append(steps, edit.Step{K: k, T: float32(t)})
	}
	return steps, nil
}

func parseSeeds(s string) ([]int64, error) {
	var seeds []int64
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--seeds: %q: %w", p, err)
		}
		seeds = append(seeds, v)
	}
	return seeds, nil
}

func runEdit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("edit", stderr)
	model := fs.String("model", "", "model directory or embedded model name (required, except with --recipe)")
	editor := fs.String("editor", "", "editor name (under the model's editors/) or editor directory (required)")
	seeds := fs.String("seeds", "1", "comma-separated seeds")
	seq := fs.String("seq", "", `edits in order, "direction:amount,…"; directions by index or name (required)`)
	imgPath := fs.String("image", "", "edit this PNG/JPEG instead of seeds: it is inverted into the editor's space (a VAE's encoder, or a GAN's trained encoder, then refined)")
	invSteps := fs.Int("invert-steps", -1, "--image: refinement steps of Adam on the latent (default: 0 for a VAE, its encoder alone; 100 for a GAN)")
	out := fs.String("out", "edit.png", "output PNG grid")
	backend := fs.String("backend", "", "go (CPU) or xla:/abs/path/plugin.so")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	recipe := fs.String("recipe", "", "replay a recipe JSON saved by the web editor: writes its one picture to --out (--model defaults to the recipe's)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *recipe != "" {
		return replayRecipe(*recipe, *model, *backend, *out, *jsonOut, stdout)
	}
	if *model == "" || *editor == "" {
		return errUsage{fmt.Errorf("--model and --editor are required (or --recipe FILE)")}
	}
	ws, err := workspace.Open(*model, *backend)
	if err != nil {
		return err
	}
	e, _, err := ws.LoadEditor(*editor)
	if err != nil {
		return err
	}
	m, err := ws.ModelFor(e) // seeds are lifted into the editor's space
	if err != nil {
		return err
	}
	steps, err := parseSeq(e, *seq)
	if err != nil {
		return errUsage{err}
	}
	var zs [][]float32
	if *imgPath != "" {
		z, err := invertImage(ws, m, *imgPath, *invSteps, stderr)
		if err != nil {
			return err
		}
		zs = [][]float32{z}
	} else {
		ss, err := parseSeeds(*seeds)
		if err != nil {
			return errUsage{err}
		}
		for _, s := range ss {
			zs = append(zs, m.Latent(s))
		}
	}
	if err := editgrid.Sequence(*out, m, e, zs, steps); err != nil {
		return err
	}
	if *jsonOut {
		b, _ := json.Marshal(map[string]any{"out": *out, "rows": len(zs), "steps": len(steps)})
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "wrote %s: %d rows (original, then each of %d edits)\n", *out, len(zs), len(steps))
	}
	return nil
}

// invertImage reads a picture, fits it to the model's size (centre crop,
// bilinear resize) and inverts it into m's space: from the VAE's encoder or
// the GAN's trained one (seeded starts without one), refined by steps of
// Adam on the latent (steps < 0: none for a VAE, 100 for a GAN).
func invertImage(ws *workspace.Workspace, m *generator.Model, path string, steps int, log io.Writer) ([]float32, error) {
	inv, err := inverterFor(ws, m, false)
	if err != nil {
		return nil, err
	}
	h, w, c := m.ImageShape()
	pics, err := invert.ReadPictures(path, h, w, c)
	if err != nil {
		return nil, fmt.Errorf("--image: %w", err)
	}
	if len(pics) != 1 {
		return nil, fmt.Errorf("--image %s: a directory of %d pictures; edit takes one picture", path, len(pics))
	}
	if steps < 0 {
		steps = 100
		if m.Info.Kind == "vae" {
			steps = 0
		}
	}
	fits, err := inv.Invert([][]float32{pics[0].Pixels}, invert.Options{Steps: steps}, invert.Hooks{})
	if err != nil {
		return nil, fmt.Errorf("--image %s: %w", path, err)
	}
	fmt.Fprintf(log, "inverted %s into %s (start: %s, %d steps): PSNR %.2f dB\n", path, m.Space(), inv.Guesser(), steps, fits[0].PSNR)
	return fits[0].Latent, nil
}

// replayRecipe redraws a recipe from the web editor: the same latent, the
// same edits in the same order, the same pixels as the page showed.
func replayRecipe(path, model, backend, out string, jsonOut bool, stdout io.Writer) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if model == "" {
		var r server.Recipe
		if err := json.Unmarshal(raw, &r); err != nil || r.Model == "" {
			return errUsage{fmt.Errorf("--recipe %s names no model; give --model", path)}
		}
		model = r.Model
	}
	ws, err := workspace.Open(model, backend)
	if err != nil {
		return err
	}
	_, img, err := server.Replay(ws, raw)
	if err != nil {
		return fmt.Errorf("--recipe %s: %w", path, err)
	}
	if err := atomicfile.Write(out, func(w io.Writer) error { return png.Encode(w, img) }); err != nil {
		return err
	}
	if jsonOut {
		b, _ := json.Marshal(map[string]any{"out": out, "model": model})
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "wrote %s: the recipe's picture\n", out)
	}
	return nil
}
