package main

import (
	"fmt"
	"io"

	"latentedit/dataset"
	"latentedit/dataset/export"
	"latentedit/internal/progress"
)

func runData(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "" || args[0][0] == '-' {
		return errUsage{fmt.Errorf("usage: latentedit data NAME --n N --out DIR (datasets: %v)", dataset.Names())}
	}
	name := args[0]
	fs := newFlags("data "+name, stderr)
	n := fs.Int("n", 64, "images to write")
	out := fs.String("out", "", "output directory (required)")
	seed := fs.Int64("seed", 1, "seed of procedural datasets")
	size := fs.Int("size", 0, "image side of procedural datasets (0: default)")
	split := fs.String("split", "train", "train or test, for datasets with splits")
	dir := fs.String("dir", "", "input folder (folder dataset) or data location override")
	noCorr := fs.Bool("no-correlation", false, "faces: independent factors")
	jsonOut := fs.Bool("json", false, "progress as JSON lines")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *out == "" {
		return errUsage{fmt.Errorf("--out is required")}
	}
	ds, err := dataset.Open(name, dataset.Options{N: *n, Seed: *seed, Size: *size, Split: *split, Dir: *dir, NoCorrelation: *noCorr})
	if err != nil {
		return err
	}
	bar := progress.New(stderr, min(*n, ds.Len()), "data "+name, *jsonOut)
	if err := export.Write(ds, *n, *out, func(done, total int) { bar.Set(done, nil) }); err != nil {
		return err
	}
	bar.Finish()
	fmt.Fprintf(stdout, "wrote %d %s images, labels.csv and contact.png to %s\n", min(*n, ds.Len()), name, *out)
	return nil
}
