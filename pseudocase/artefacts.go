package pseudocase

import (
	"fmt"
	"io"

	"latentedit/evaluate"
	"latentedit/internal/progress"
	"latentedit/workspace"
)

// MeasureArtefacts adds to a quality measurement of a fundus model the rate
// of samples in which the model's segmenter finds a number of optic discs
// other than one (Structure.DiscCount), and the same rate on the first real
// set: the segmenter's own error, the floor under the samples' rate. It
// reads im's images, the ones evaluate.MeasureQuality read. It returns an
// error wrapping ErrNoSegmenter when the model has none.
func MeasureArtefacts(ws *workspace.Workspace, im *evaluate.QualityImages, log io.Writer, jsonLines bool) (*evaluate.Artefacts, error) {
	dir, ok := SegmenterDir(ws)
	if !ok {
		return nil, fmt.Errorf("%w for this model in %s: train one with `latentedit pseudocase --model … --train-segmenter`", ErrNoSegmenter, dir)
	}
	seg, err := LoadSegmenter(dir, ws.Model.Backend())
	if err != nil {
		return nil, err
	}
	return DiscArtefacts(seg, im, log, jsonLines)
}

// DiscArtefacts counts the optic discs the segmenter finds in im's samples
// and in its first real set.
func DiscArtefacts(seg *Segmenter, im *evaluate.QualityImages, log io.Writer, jsonLines bool) (*evaluate.Artefacts, error) {
	n, sz := im.N, seg.Size*seg.Size*3
	if n < 1 || len(im.Samples) != n*sz || len(im.Real) < n*sz {
		return nil, fmt.Errorf("artefacts: %d sample and %d real values for %d images of %dx%dx3 (the segmenter's size)", len(im.Samples), len(im.Real), n, seg.Size, seg.Size)
	}
	a := &evaluate.Artefacts{MinArea: MinDiscArea,
		Judge: fmt.Sprintf("segmenter (%d steps, held-out disc Dice %.3f)", seg.Steps, seg.Dice[channelNames[ChanDisc]])}
	bar := progress.New(log, 2*n, "quality: optic discs", jsonLines)
	// Blocks of a multiple of predictChunk: the same batches as one call.
	const block = 8 * predictChunk
	count := func(pix []float32, counts *[4]int, done int) (float64, error) {
		off := 0
		for s := 0; s < n; s += block {
			e := min(n, s+block)
			st, err := seg.Predict(pix[s*sz:e*sz], e-s)
			if err != nil {
				return 0, err
			}
			for _, x := range st {
				counts[min(x.DiscCount, 3)]++
				if x.DiscCount != 1 {
					off++
				}
			}
			bar.Set(done+e, nil)
		}
		return float64(off) / float64(n), nil
	}
	var err error
	if a.Sample, err = count(im.Samples, &a.SampleCounts, 0); err != nil {
		return nil, err
	}
	if a.Data, err = count(im.Real[:n*sz], &a.DataCounts, n); err != nil {
		return nil, err
	}
	bar.Finish()
	return a, nil
}
