package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"latentedit/dataset"
	"latentedit/evaluate"
	"latentedit/invert"
	"latentedit/pseudocase"
	"latentedit/workspace"
)

// measureSeed is the data seed of --measure's renders: no model, oracle
// (12345, 54321) or segmenter (1, 2) was trained or checked on it, and it
// is never a model's data_seed (measureData moves off one that is).
const measureSeed = 900001

// fidelity is one row of --measure's table.
type fidelity struct {
	Start string  `json:"start"` // seeds, encoder, vae-encoder
	Steps int     `json:"steps"` // refinement steps (0: the start alone)
	PSNR  float64 `json:"mean_psnr_db"`
	// Faces (and any dataset with an oracle): mean |oracle(inversion) −
	// oracle(picture)| per factor (hues the short way round) and over all.
	FactorErr  map[string]float64 `json:"oracle_factor_error,omitempty"`
	MeanFactor *float64           `json:"mean_oracle_factor_error,omitempty"`
	// Fundus: the segmenter's vessel Dice of inversion vs picture, and the
	// optic-disc shift in px (NaN-free mean over pictures with a disc in both).
	VesselDice *float64 `json:"mean_vessel_dice,omitempty"`
	DiscShift  *float64 `json:"mean_disc_shift_px,omitempty"`
	DiscPairs  int      `json:"disc_found_in_both,omitempty"`
	Seconds    float64  `json:"seconds"`
}

func runInvertMeasure(ws *workspace.Workspace, inv *invert.Inverter, n int, opt invert.Options, baseline bool, stdout, stderr io.Writer, jsonOut bool) error {
	m := inv.Model()
	seed := int64(measureSeed)
	if seed == m.Info.Config.DataSeed {
		seed++
	}
	ds, err := m.Info.OpenData(dataset.Options{N: n, Seed: seed})
	if err != nil {
		return err
	}
	if ds.Len() < n {
		return fmt.Errorf("--measure %d: the model's dataset %s has %d pictures", n, m.Info.Dataset, ds.Len())
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	pix, _, err := dataset.Batch(ds, idx)
	if err != nil {
		return err
	}
	h, w, c := m.ImageShape()
	sz := h * w * c
	pics := make([][]float32, n)
	for i := range pics {
		pics[i] = pix[i*sz : (i+1)*sz]
	}
	// The judges the dataset has: the oracle (loaded, never trained here)
	// and, for fundus, the segmenter.
	var orc *evaluate.Oracle
	if o, err := evaluate.LoadOracle(ws.OracleDir(), m.Backend()); err == nil {
		orc = o
	} else {
		fmt.Fprintf(stderr, "no oracle (%v): no factor error\n", err)
	}
	var seg *pseudocase.Segmenter
	if m.Info.Dataset == "fundus" {
		if dir, ok := pseudocase.SegmenterDir(ws); ok {
			if seg, err = pseudocase.LoadSegmenter(dir, m.Backend()); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(stderr, "%v in %s: no vessel Dice\n", pseudocase.ErrNoSegmenter, dir)
		}
	}
	var refPred [][]float64
	var refSeg []pseudocase.Structure
	if orc != nil {
		if refPred, err = orc.Predict(pix, n); err != nil {
			return err
		}
	}
	if seg != nil {
		if refSeg, err = seg.Predict(pix, n); err != nil {
			return err
		}
	}
	// Rows: the start alone and refined; for a GAN with an encoder also
	// the seeded starts refined (inversion as it was before encoders).
	type run struct {
		noGuess bool
		steps   int
	}
	runs := []run{{false, 0}, {false, opt.Steps}}
	if inv.Guesser() == "encoder" && baseline {
		runs = append(runs, run{true, opt.Steps})
	}
	var rows []fidelity
	for _, r := range runs {
		o := opt
		o.Steps, o.NoGuess = r.steps, r.noGuess
		start := time.Now()
		fits, err := inv.Invert(pics, o, invert.Hooks{})
		if err != nil {
			return err
		}
		row := fidelity{Start: inv.Guesser(), Steps: r.steps, Seconds: time.Now().Sub(start).Seconds()}
		if r.noGuess {
			row.Start = "seeds"
		}
		var lat []float32
		for _, f := range fits {
			row.PSNR += f.PSNR / float64(n)
			lat = append(lat, f.Latent...)
		}
		out, err := m.GenerateFloats(lat, n)
		if err != nil {
			return err
		}
		if orc != nil {
			got, err := orc.Predict(out, n)
			if err != nil {
				return err
			}
			row.FactorErr = map[string]float64{}
			mean := 0.0
			for i := range got {
				for f, name := range orc.Factors {
					d := math.Abs(evaluate.FactorDiff(name, got[i][f], refPred[i][f])) / float64(n)
					row.FactorErr[name] += d
					mean += d / float64(len(orc.Factors))
				}
			}
			row.MeanFactor = &mean
		}
		if seg != nil {
			got, err := seg.Predict(out, n)
			if err != nil {
				return err
			}
			var dice, shift float64
			for i := range got {
				a := pseudocase.Agree(refSeg[i], got[i])
				dice += a.VesselDice / float64(n)
				if !math.IsNaN(a.DiscShift) {
					shift += a.DiscShift
					row.DiscPairs++
				}
			}
			row.VesselDice = &dice
			if row.DiscPairs > 0 {
				shift /= float64(row.DiscPairs)
				row.DiscShift = &shift
			}
		}
		rows = append(rows, row)
		fmt.Fprintf(stderr, "%s + %d steps: mean PSNR %.2f dB (%.0f s)\n", row.Start, row.Steps, row.PSNR, row.Seconds)
	}
	if jsonOut {
		return printResult(stdout, true, map[string]any{"model": m.Dir, "space": m.Space(), "pictures": n, "data_seed": seed, "rows": rows}, "")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "fidelity of %s in %s on %d held-out renders of %s (data seed %d)\n", m.Dir, m.Space(), n, m.Info.Dataset, seed)
	fmt.Fprintf(&b, "| start | refinement steps | mean PSNR (dB) |")
	if orc != nil {
		b.WriteString(" oracle factor error (mean) |")
	}
	if seg != nil {
		b.WriteString(" vessel Dice | disc shift (px) |")
	}
	b.WriteString(" seconds |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %.2f |", r.Start, r.Steps, r.PSNR)
		if r.MeanFactor != nil {
			fmt.Fprintf(&b, " %.3f |", *r.MeanFactor)
		}
		if r.VesselDice != nil {
			ds := "n/a"
			if r.DiscShift != nil {
				ds = fmt.Sprintf("%.2f (%d/%d)", *r.DiscShift, r.DiscPairs, n)
			}
			fmt.Fprintf(&b, " %.3f | %s |", *r.VesselDice, ds)
		}
		fmt.Fprintf(&b, " %.0f |\n", r.Seconds)
	}
	fmt.Fprint(stdout, b.String())
	return nil
}
