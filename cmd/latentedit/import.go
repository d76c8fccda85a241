package main

import (
	"fmt"
	"io"
	"strings"

	"latentedit/engine"
	"latentedit/interop"
)

func runImport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("import", stderr)
	from := fs.String("from", "", "file to import: a PyTorch state dict .pt/.pth (torch.save zip) or .safetensors; with --arch onnx an .onnx graph (required)")
	arch := fs.String("arch", "", "its architecture: "+strings.Join(interop.Archs, ", ")+" (required; docs/import.md)")
	out := fs.String("out", "", "model directory to create; it must not exist (required)")
	latent := fs.Int("latent", 0, "latent dimension (sn_resnet: default 128; dcgan: read from the file)")
	psi := fs.Float64("truncation", 0, "style, stylegan2: truncation ψ in (0, 1] at sampling, recorded in model.json (default none)")
	size := fs.Int("size", 0, "stylegan2: image size, checked against the file (read from it)")
	mult := fs.Int("channel-multiplier", 0, "stylegan2: rosinality's channel_multiplier, checked against the file's channels")
	nMLP := fs.Int("n-mlp", 0, "stylegan2: mapping layers, checked against the file (read from it)")
	lrMLP := fs.Float64("lr-mlp", 0, "stylegan2: the mapping's lr_mlp of train.py (default 0.01; not in the file)")
	rng := fs.String("range", "", "stylegan2, onnx: LO,HI, the range of the generator's raw output (e.g. 0,1 or 0,255), mapped to [-1, 1] and recorded in model.json (default: already [-1, 1])")
	data := fs.String("dataset", "", "dataset the generator was trained on, recorded in model.json (default \"imported\")")
	backend := fs.String("backend", "", "go (CPU, default) or xla:/abs/path/pjrt_plugin.so; default $GOMLX_BACKEND")
	jsonOut := fs.Bool("json", false, "print the result as one JSON line")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *from == "" || *arch == "" || *out == "" {
		return errUsage{fmt.Errorf("--from, --arch and --out are required")}
	}
	var outRange []float64
	if *rng != "" {
		r, err := interop.ParseRange(*rng)
		if err != nil {
			return errUsage{err}
		}
		outRange = r
	}
	be, err := engine.NewBackend(*backend)
	if err != nil {
		return err
	}
	info, err := interop.Import(interop.Options{
		From: *from, Arch: *arch, Out: *out, Latent: *latent, Truncation: *psi, Dataset: *data, Backend: be,
		Size: *size, ChannelMultiplier: *mult, NMLP: *nMLP, LRMul: *lrMLP, Range: outRange,
		Command: "latentedit import " + strings.Join(args, " "),
	})
	if err != nil {
		return err
	}
	if *jsonOut {
		fmt.Fprintf(stdout, "{\"out\":%q,\"arch\":%q,\"size\":%d,\"channels\":%d,\"latent_dim\":%d,\"source_sha256\":%q}\n",
			*out, *arch, info.Height, info.Channels, info.LatentDim, info.Source.SHA256)
	} else {
		fmt.Fprintf(stdout, "imported %s (%s, %dx%dx%d, latent %d) into %s (samples: %s/%s)\n",
			*from, *arch, info.Height, info.Width, info.Channels, info.LatentDim, *out, *out, "samples.png")
	}
	return nil
}
