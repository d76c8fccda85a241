package pseudocase

import (
	"fmt"
	"io"

	"latentedit/edit"
	"latentedit/evaluate"
	"latentedit/generator"
	"latentedit/internal/progress"
)

// Structure labels added to the oracle's factors when fitting a
// structure-conditioned editor: the optic-disc centre found by the segmenter.
var structureLabels = []string{"disc_x", "disc_y"}

// FitInterFaceGAN fits an InterFaceGAN editor (package edit) on n latents
// from seed labelled by the oracle's factors and by the segmenter's optic-disc
// centre. Every lesion direction is conditioned on the other lesion factors
// and on the disc position: moving along it leaves their boundaries' scores
// unchanged. Why: on the fundus GAN the plain detachment-position directions
// also move the disc from one side to the other (the GAN couples position
// and eye side), which is exactly the structure a pseudo-case must keep.
// Latents whose disc the segmenter does not find are left out.
func FitInterFaceGAN(m *generator.Model, o *evaluate.Oracle, s *Segmenter, n int, seed int64, log io.Writer) (edit.Editor, error) {
	if n < 10 {
		return nil, fmt.Errorf("fit: %d latents are too few", n)
	}
	zs := m.Latents(seed, n)
	var keep [][]float32
	var labels [][]float32
	bar := progress.New(log, n, "label latents (oracle + disc)", false)
	const block = 128
	for st := 0; st < n; st += block {
		e := min(n, st+block)
		pix, err := m.GenerateChunked(zs[st:e], predictChunk)
		if err != nil {
			return nil, err
		}
		read, err := o.PredictChunked(pix, e-st)
		if err != nil {
			return nil, err
		}
		structs, err := s.Predict(pix, e-st)
		if err != nil {
			return nil, err
		}
		for i := range read {
			if !structs[i].DiscFound {
				continue
			}
			row := make([]float32, 0, len(read[i])+len(structureLabels))
			for _, v := range read[i] {
				row = append(row, float32(v))
			}
			row = append(row, float32(structs[i].DiscX), float32(structs[i].DiscY))
			keep, labels = append(keep, zs[st+i]), append(labels, row)
		}
		bar.Set(e, nil)
	}
	bar.Finish()
	names := append(append([]string(nil), o.Factors...), structureLabels...)
	cond := map[string][]string{}
	for _, f := range o.Factors {
		for _, g := range names {
			if g != f {
				cond[f] = append(cond[f], g)
			}
		}
	}
	return edit.NewInterFaceGAN(keep, labels, names, edit.InterFaceGANOptions{Condition: cond}, m.Backend())
}
