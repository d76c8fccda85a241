package main

import (
	"cmp"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	_ "latentedit/dataset/faces"
	_ "latentedit/dataset/folder"
	_ "latentedit/dataset/fundus"
	_ "latentedit/dataset/mnist"
	"latentedit/engine"
	"latentedit/generator"
)

func runTrain(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train", stderr)
	d := generator.Default("gan", "faces")
	kind := fs.String("kind", d.Kind, "gan or vae")
	data := fs.String("data", d.Dataset, "dataset: faces, fundus, mnist, fashion-mnist, or folder (with --data-dir)")
	out := fs.String("out", "", "model directory to write (required)")
	resume := fs.Bool("resume", false, "continue the run in --out from its last checkpoint")
	exportD := fs.Bool("export-discriminator", false, "write the discriminator of the GAN run in --out from its train state (for runs checkpointed before the trainer saved it) and stop")
	backend := fs.String("backend", "", "go (CPU, default) or xla:/abs/path/pjrt_plugin.so; default $GOMLX_BACKEND")
	jsonOut := fs.Bool("json", false, "progress as JSON lines instead of a bar")
	fs.IntVar(&d.Steps, "steps", d.Steps, "training steps")
	fs.IntVar(&d.Batch, "batch", d.Batch, "batch size")
	fs.IntVar(&d.Latent, "latent", d.Latent, "latent dimension")
	fs.IntVar(&d.Base, "base", d.Base, "channel width of the largest feature maps")
	fs.IntVar(&d.Size, "size", 0, "image side (0: the dataset's default; 64 for --data folder, whose images are centre-cropped and resized to it)")
	fs.StringVar(&d.DataDir, "data-dir", "", "--data folder: the folder of PNG/JPEG images (sub-folders included)")
	fs.IntVar(&d.DataN, "data-n", d.DataN, "training images")
	fs.Int64Var(&d.DataSeed, "data-seed", d.DataSeed, "seed of procedural datasets")
	fs.Int64Var(&d.Seed, "seed", d.Seed, "seed of weights, latents and data order")
	fs.StringVar(&d.Loss, "loss", d.Loss, "GAN loss: ns or hinge")
	fs.StringVar(&d.DNorm, "d-norm", d.DNorm, "discriminator normalisation: sn or bn")
	fs.Float64Var(&d.Beta, "beta", d.Beta, "VAE KL weight")
	fs.Float64Var(&d.LR, "lr", d.LR, "Adam learning rate")
	fs.Var(&d.Schedule, "lr-schedule", "learning-rate schedule: constant, step:AT:FACTOR (step:0.75:0.1 = tenfold drop for the last quarter), cosine[:FINAL]; +warmup:N")
	fs.Float64Var(&d.EMA, "ema", d.EMA, "GAN sampling weights: EMA decay")
	fs.IntVar(&d.SampleEvery, "sample-every", d.SampleEvery, "write samples.png and curves.png every N steps")
	fs.IntVar(&d.CheckpointEvery, "checkpoint-every", d.CheckpointEvery, "checkpoint every N steps")
	fs.BoolVar(&d.NoCorrelation, "no-correlation", false, "faces: draw factors independently")
	fs.StringVar(&d.ArchKind, "arch", generator.ArchDCGAN, "generator architecture: dcgan, or style (mapping network, modulated convolutions, residual D with minibatch stddev, lazy R1)")
	fs.BoolVar(&d.MBStd, "mbstd", false, "GAN: minibatch-standard-deviation layer in D (always on with --arch style)")
	fs.IntVar(&d.MapDepth, "map-depth", 2, "style: dense layers of the mapping network z → w")
	fs.BoolVar(&d.Noise, "noise", false, "style: per-block noise inputs")
	fs.IntVar(&d.Convs, "convs", 1, "style: modulated 3×3 convolutions per upsampling block (1, or 2 as StyleGAN2)")
	fs.Float64Var(&d.Mixing, "mixing", 0.9, "style: probability of style mixing in training")
	fs.Float64Var(&d.R1, "r1", 0, fmt.Sprintf("style: R1 weight γ (0: %g)", float64(generator.DefaultR1)))
	fs.IntVar(&d.R1Every, "r1-every", 16, "style: lazy R1 period in steps")
	fs.Float64Var(&d.Truncation, "truncation", 1, "style: truncation ψ at sampling (1: none)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return errUsage{fmt.Errorf("--out is required")}
	}
	if *exportD {
		if err := generator.ExportDiscriminator(*out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(*out, generator.DiscriminatorFile))
		return nil
	}
	d.Kind, d.Dataset = *kind, *data
	if d.Dataset == "folder" {
		if d.DataDir == "" {
			return errUsage{fmt.Errorf("--data folder needs --data-dir DIR (the folder of PNG/JPEG images)")}
		}
		d.Size = cmp.Or(d.Size, 64) // a folder's images may all differ in size: pick one
	} else if d.DataDir != "" {
		return errUsage{fmt.Errorf("--data-dir is for --data folder (got --data %s)", d.Dataset)}
	}
	if d.ArchKind != generator.ArchStyle { // the style-only settings are not part of another model
		d.MapDepth, d.Noise, d.Mixing, d.R1, d.R1Every, d.Truncation, d.Convs = 0, false, 0, 0, 0, 0, 0
	}
	be, err := engine.NewBackend(*backend)
	if err != nil {
		return err
	}
	res, err := generator.Train(d, generator.Options{
		Out: *out, Resume: *resume, Backend: be, Log: stderr, JSON: *jsonOut,
		Command: "latentedit train " + strings.Join(args, " "),
	})
	if err != nil {
		return err
	}
	if *jsonOut {
		fmt.Fprintf(stdout, "{\"out\":%q,\"step\":%d}\n", *out, res.Step)
	} else {
		fmt.Fprintf(stdout, "trained %s %s for %d steps into %s (samples: %s)\n", d.Kind, d.Dataset, res.Step, *out, *out+"/"+generator.SamplesPNG)
	}
	return nil
}
