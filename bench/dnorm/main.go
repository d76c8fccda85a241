// Command dnorm measures which discriminator normalisation trains the faces
// GAN better — spectral norm or batch norm — by training the same small GAN
// twice (same seed, data and steps) and comparing the Fréchet distance of
// oracle features between its samples and held-out real faces (lower is
// better). Usage: go run ./bench/dnorm --oracle work/faces-gan/oracle --steps 400
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"latentedit/dataset"
	_ "latentedit/dataset/faces"
	"latentedit/engine"
	"latentedit/evaluate"
	"latentedit/generator"
)

func main() {
	oracleDir := flag.String("oracle", "work/faces-gan/oracle", "faces oracle directory (latentedit evaluate/discover make one)")
	steps := flag.Int("steps", 400, "training steps per run")
	n := flag.Int("n", 500, "images per Fréchet estimate")
	flag.Parse()
	if err := run(*oracleDir, *steps, *n); err != nil {
		fmt.Fprintln(os.Stderr, "dnorm:", err)
		os.Exit(1)
	}
}

func run(oracleDir string, steps, n int) error {
	be, err := engine.NewBackend("")
	if err != nil {
		return err
	}
	orc, err := evaluate.LoadOracle(oracleDir, be)
	if err != nil {
		return err
	}
	held, err := dataset.Open("faces", dataset.Options{N: n, Seed: 777})
	if err != nil {
		return err
	}
	realPix, _, err := dataset.Batch(held, seqInts(n))
	if err != nil {
		return err
	}
	realFeat, err := orc.Features(realPix, n)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "dnorm")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	res := map[string]any{"steps": steps, "n": n}
	for _, norm := range []string{"sn", "bn"} {
		cfg := generator.Default("gan", "faces")
		cfg.DNorm, cfg.Base, cfg.Latent, cfg.Batch, cfg.Steps, cfg.DataN = norm, 16, 64, 32, steps, 4000
		cfg.SampleEvery, cfg.CheckpointEvery = steps, steps
		dir := filepath.Join(tmp, norm)
		start := time.Now()
		if _, err := generator.Train(cfg, generator.Options{Out: dir, Backend: be, Log: os.Stderr}); err != nil {
			return err
		}
		m, err := generator.Load(dir, be)
		if err != nil {
			return err
		}
		var flat []float32
		for _, z := range m.Latents(5000, n) {
			flat = append(flat, z...)
		}
		pix, err := m.GenerateFloats(flat, n)
		if err != nil {
			return err
		}
		feat, err := orc.Features(pix, n)
		if err != nil {
			return err
		}
		fd, err := evaluate.Frechet(feat, realFeat)
		if err != nil {
			return err
		}
		res[norm] = map[string]float64{"frechet": fd, "train_s": time.Since(start).Seconds()}
	}
	out, _ := json.MarshalIndent(res, "", "  ")
	fmt.Println(string(out))
	return nil
}

func seqInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
