package pseudocase

import (
	"errors"
	"fmt"
	"io"
	"math"

	"latentedit/internal/progress"
	inversion "latentedit/invert"
)

// ErrNotFundus is wrapped by the error for a given picture that does not
// look like a fundus photograph.
var ErrNotFundus = errors.New("not a fundus photograph")

// Agreement is how the structure of a picture and of another (its
// inversion, say) agree.
type Agreement struct {
	VesselDice float64 // Dice of the segmented vessels over the whole image; 1 when neither has one
	DiscShift  float64 // distance of the disc centres in pixels; NaN when one has no disc found
}

// Agree compares the structures a and b of two pictures of one size.
func Agree(a, b Structure) Agreement {
	g := Agreement{VesselDice: vesselDice(a, b, nil), DiscShift: math.NaN()}
	if a.DiscFound && b.DiscFound {
		g.DiscShift = math.Hypot(a.DiscX-b.DiscX, a.DiscY-b.DiscY)
	}
	return g
}

// vesselDice is the Dice overlap of a's and b's segmented vessels over the
// pixels excl does not mark (nil: every pixel); 1 when neither has a vessel
// there.
func vesselDice(a, b Structure, excl []bool) float64 {
	var inter, sum float64
	for j, va := range a.Masks[ChanVessels] {
		if excl != nil && excl[j] {
			continue
		}
		vb := b.Masks[ChanVessels][j]
		if va && vb {
			inter++
		}
		if va {
			sum++
		}
		if vb {
			sum++
		}
	}
	if sum == 0 {
		return 1
	}
	return 2 * inter / sum
}

// Fundus photograph checks, on a picture at the model's size in [-1, 1]:
// the surround (the corners outside the field's circle) is dark, the field
// (the central disc of half the side's radius) is red-orange — red above
// green above blue, and red bright enough — and the segmenter finds an
// optic disc. Measured on 64 rendered retinas and 64 of the fundus GAN's
// pictures: corners at most 0.003 bright (limit 0.25), field red at least
// 0.48 (limit 0.25), red above green above blue by at least 0.046; 64
// rendered faces have corners of up to 0.87 (TestCheckFundus checks both
// sides). A landscape or a grey picture fails at least one check.
const (
	maxSurround = 0.25 // mean brightness of the corners, in [0, 1]
	minFieldRed = 0.25 // mean red of the field, in [0, 1]
)

// CheckFundus says why pix (flat [size, size, 3] in [-1, 1]), read by the
// segmenter as st, is not a fundus photograph, or nil when it looks like
// one. name (the file) starts the message.
func CheckFundus(name string, pix []float32, size int, st Structure) error {
	var corner, cn float64
	var field [3]float64
	var fn float64
	c := float64(size) / 2
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			r := math.Hypot(float64(x)+0.5-c, float64(y)+0.5-c) / c
			p := pix[(y*size+x)*3 : (y*size+x)*3+3]
			switch {
			case r > 1.2: // the corners: outside the camera's circle
				corner += (float64(p[0]) + float64(p[1]) + float64(p[2]) + 3) / 6
				cn++
			case r < 0.5:
				for k := 0; k < 3; k++ {
					field[k] += (float64(p[k]) + 1) / 2
				}
				fn++
			}
		}
	}
	corner /= cn
	for k := range field {
		field[k] /= fn
	}
	switch {
	case corner > maxSurround:
		return fmt.Errorf("%s: %w: the surround is not dark (mean brightness of the corners %.2f, a fundus photograph's is below %.2f)", name, ErrNotFundus, corner, maxSurround)
	case !(field[0] > field[1] && field[1] > field[2]) || field[0] < minFieldRed:
		return fmt.Errorf("%s: %w: the field is not red-orange (mean red, green, blue %.2f, %.2f, %.2f; want red ≥ %.2f above green above blue)", name, ErrNotFundus, field[0], field[1], field[2], minFieldRed)
	case !st.DiscFound:
		return fmt.Errorf("%s: %w: the segmenter finds no optic disc", name, ErrNotFundus)
	}
	return nil
}

// Given is a picture given to a run (pseudocase --image): at the model's
// size, checked to be a fundus photograph, inverted into the editor's
// space. Its cases edit the inversion and are scored against the picture
// itself: the oracle's before reading, the vessels and the disc are the
// picture's.
type Given struct {
	Path   string
	Pixels []float32 // [S, S, 3] in [-1, 1]
	Crop   inversion.Crop
	Latent []float32
	// PSNR of the inversion against the picture, and the Dice of their
	// segmented vessels (whole image).
	PSNR, VesselDice float64
}

// InvertGiven checks every picture — the segmenter must find what a fundus
// photograph has (CheckFundus) — before it inverts any, then inverts them
// through inv (the editor's space) with steps of refinement.
func InvertGiven(t Tools, inv *inversion.Inverter, pics []inversion.Picture, steps int, log io.Writer) ([]Given, error) {
	m := inv.Model()
	h, w, c := m.ImageShape()
	if h != t.Segmenter.Size || w != h || c != 3 {
		return nil, fmt.Errorf("pseudocase: model pictures are %dx%dx%d; the segmenter reads %dx%dx3", h, w, c, t.Segmenter.Size, t.Segmenter.Size)
	}
	if m.Space() != t.Editor.Space() {
		return nil, fmt.Errorf("pseudocase: the inversion is in %s, editor %s moves latents in %s", m.Space(), t.EditorName, t.Editor.Space())
	}
	var pix []float32
	for _, p := range pics {
		pix = append(pix, p.Pixels...)
	}
	st, err := t.Segmenter.Predict(pix, len(pics))
	if err != nil {
		return nil, err
	}
	for i, p := range pics {
		if err := CheckFundus(p.Path, p.Pixels, h, st[i]); err != nil {
			return nil, err
		}
	}
	out := make([]Given, len(pics))
	const chunk = 16
	bar := progress.New(log, len(pics), "invert pictures", false)
	for s := 0; s < len(pics); s += chunk {
		e := min(len(pics), s+chunk)
		var px [][]float32
		for _, p := range pics[s:e] {
			px = append(px, p.Pixels)
		}
		fits, err := inv.Invert(px, inversion.Options{Steps: steps}, inversion.Hooks{})
		if err != nil {
			return nil, err
		}
		var lat []float32
		for _, f := range fits {
			lat = append(lat, f.Latent...)
		}
		rec, err := m.GenerateChunked(splitRows(lat, m.LatentDim()), predictChunk)
		if err != nil {
			return nil, err
		}
		got, err := t.Segmenter.Predict(rec, e-s)
		if err != nil {
			return nil, err
		}
		for i, f := range fits {
			p := pics[s+i]
			out[s+i] = Given{Path: p.Path, Pixels: p.Pixels, Crop: p.Crop, Latent: f.Latent, PSNR: f.PSNR,
				VesselDice: Agree(st[s+i], got[i]).VesselDice}
		}
		bar.Set(e, nil)
	}
	bar.Finish()
	return out, nil
}

func splitRows(flat []float32, d int) [][]float32 {
	out := make([][]float32, len(flat)/d)
	for i := range out {
		out[i] = flat[i*d : (i+1)*d]
	}
	return out
}
