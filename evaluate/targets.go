package evaluate

import (
	"fmt"
	"math"
)

// Check is one target of issue #15 against its measured value.
type Check struct {
	Target string   `json:"target"`
	Value  *float64 `json:"value"` // nil: not measured (the check fails)
	Want   string   `json:"want"`
	Pass   bool     `json:"pass"`
}

// Limits of the targets (issue #15): what the retrained default models must
// reach, with n ≥ 1000 images a side.
const (
	FrechetRatioGAN = 3    // Fréchet ≤ 3× real-vs-real (faces and fundus GANs)
	FrechetRatioVAE = 5    // faces VAE prior samples
	MinPrecision    = 0.8  // faces GAN
	MinRecall       = 0.8  // faces GAN
	MaxW1Spreads    = 0.15 // every faces factor
	MaxRelRate      = 0.25 // mode rates within ±25% of the data's (relative)
	MinModeShare    = 0.04 // a background hue bin is checked when it holds this much of the data
	MaxArtefactRate = 0.02 // fundus samples with ≠ 1 optic disc
	MinDigitRate    = 0.07 // every MNIST digit between 7% …
	MaxDigitRate    = 0.13 // … and 13% of samples
)

// CheckTargets sets Checks and Pass from the targets of the model's
// dataset and kind (faces GAN, faces VAE, fundus GAN, MNIST GAN); other
// models have none. Call it again after adding Artefacts.
func (q *Quality) CheckTargets() {
	q.Checks = nil
	atMost := func(target string, v *float64, limit float64) {
		q.Checks = append(q.Checks, Check{target, v, fmt.Sprintf("≤ %g", limit), v != nil && *v <= limit})
	}
	atLeast := func(target string, v float64, limit float64) {
		q.Checks = append(q.Checks, Check{target, ptr(v), fmt.Sprintf("≥ %g", limit), v >= limit})
	}
	relRate := func(m Mode) {
		target := fmt.Sprintf("%s %s: sample rate vs data rate (relative)", m.Group, m.Bin)
		ok := m.RelDiff != nil && math.Abs(*m.RelDiff) <= MaxRelRate
		q.Checks = append(q.Checks, Check{target, m.RelDiff, fmt.Sprintf("within ±%g", MaxRelRate), ok})
	}
	frechet := func(limit float64) {
		atMost(fmt.Sprintf("Fréchet / real-vs-real (%.3g / %.3g)", q.Frechet, q.FrechetReal), ptr(q.FrechetRatio), limit)
	}
	switch q.Dataset + " " + q.Kind {
	case "faces gan":
		frechet(FrechetRatioGAN)
		atLeast("precision (k-NN manifolds)", q.Precision, MinPrecision)
		atLeast("recall (k-NN manifolds)", q.Recall, MinRecall)
		for _, f := range q.Factors {
			atMost("W1 "+f.Name+" (spreads)", ptr(f.W1), MaxW1Spreads)
		}
		for _, m := range q.Modes {
			if m.Group == "background hue" && m.Data >= MinModeShare {
				relRate(m)
			}
		}
	case "faces vae":
		frechet(FrechetRatioVAE)
	case "fundus gan":
		for _, m := range q.Modes {
			switch m.Group {
			case "detachment present", "haemorrhages present", "glaucomatous cup":
				relRate(m)
			}
		}
		var rate *float64
		if q.Artefacts != nil {
			rate = ptr(q.Artefacts.Sample)
		}
		atMost("samples with ≠ 1 optic disc (segmenter)", rate, MaxArtefactRate)
		frechet(FrechetRatioGAN)
	case "mnist gan":
		for _, m := range q.Modes {
			if m.Group == "class" {
				ok := m.Sample >= MinDigitRate && m.Sample <= MaxDigitRate
				q.Checks = append(q.Checks, Check{"digit " + m.Bin + " rate", ptr(m.Sample), fmt.Sprintf("in [%g, %g]", MinDigitRate, MaxDigitRate), ok})
			}
		}
	}
	q.Pass = len(q.Checks) > 0
	for _, c := range q.Checks {
		q.Pass = q.Pass && c.Pass
	}
}
