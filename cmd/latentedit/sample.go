package main

import (
	"fmt"
	"io"

	"latentedit/generator"
	"latentedit/internal/progress"
	"latentedit/workspace"
)

// sampleResult is what `sample --json` prints.
type sampleResult struct {
	Model string `json:"model"`
	N     int    `json:"n"`
	Seed  int64  `json:"seed"`
	Out   string `json:"out"`
}

func runSample(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sample", stderr)
	model := fs.String("model", "", "model directory or embedded model name (required)")
	n := fs.Int("n", 64, "pictures to write")
	out := fs.String("out", "", "output directory (required)")
	seed := fs.Int64("seed", 1, "seed of the first picture; picture i has seed seed+i, as in the web editor's gallery")
	backend := fs.String("backend", "", "go (CPU) or xla:/abs/path/plugin.so")
	jsonOut := fs.Bool("json", false, "progress and result as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *model == "" || *out == "":
		return errUsage{fmt.Errorf("--model and --out are required")}
	case *n < 1 || *n > generator.MaxSamples:
		return errUsage{fmt.Errorf("--n %d: want 1 to %d", *n, generator.MaxSamples)}
	}
	ws, err := workspace.Open(*model, *backend)
	if err != nil {
		return err
	}
	bar := progress.New(stderr, *n, "sample "+*model, *jsonOut)
	if err := generator.WriteSamples(ws.Model, *seed, *n, *out, func(done, _ int) { bar.Set(done, nil) }); err != nil {
		return err
	}
	bar.Finish()
	return printResult(stdout, *jsonOut, sampleResult{Model: *model, N: *n, Seed: *seed, Out: *out},
		fmt.Sprintf("wrote %d pictures of %s (seeds %d–%d), latents.csv and contact.png to %s", *n, *model, *seed, *seed+int64(*n)-1, *out))
}
