package main

import (
	"fmt"
	"io"
	"strings"

	"latentedit/interop"
	"latentedit/workspace"
)

func runExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("export", stderr)
	model := fs.String("model", "", "model directory or embedded model name (required)")
	editor := fs.String("editor", "", "editor name under the model's editors/, or an editor directory (required)")
	format := fs.String("format", "safetensors", "file format: "+strings.Join(interop.ExportFormats, ", ")+" (npy: linear editors only, metadata in a .json beside it)")
	out := fs.String("out", "", "file to write, with the format's extension; it must not exist (required)")
	backend := fs.String("backend", "", "go (CPU, default) or xla:/abs/path/pjrt_plugin.so; default $GOMLX_BACKEND")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *model == "" || *editor == "" || *out == "" {
		return errUsage{fmt.Errorf("--model, --editor and --out are required")}
	}
	ws, err := workspace.Open(*model, *backend)
	if err != nil {
		return err
	}
	e, _, err := ws.LoadEditor(*editor)
	if err != nil {
		return err
	}
	m, err := ws.ModelFor(e)
	if err != nil {
		return err
	}
	if err := interop.Export(interop.ExportOptions{Editor: e, Name: *editor, Model: *model, Format: *format, Out: *out, Frame: m.Frame()}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "exported %s editor %s (K %d, latent %d) to %s; apply it with interop/torch/latentedit_edit.py (docs/import.md)\n",
		e.Method(), *editor, e.K(), e.LatentDim(), *out)
	return nil
}
