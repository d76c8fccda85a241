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
	// Note warns when the judge itself misses the target's quantity on
	// real images by more than the target's tolerance: the check then
	// says little about the generator, whichever way it went.
	Note string `json:"note,omitempty"`
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
	q.Checks = []Check{} // [] not null in JSON
	atMost := func(target string, v *float64, limit float64) *Check {
		q.Checks = append(q.Checks, Check{Target: target, Value: v, Want: fmt.Sprintf("≤ %g", limit), Pass: v != nil && *v <= limit})
		return &q.Checks[len(q.Checks)-1]
	}
	atLeast := func(target string, v float64, limit float64) {
		q.Checks = append(q.Checks, Check{Target: target, Value: ptr(v), Want: fmt.Sprintf("≥ %g", limit), Pass: v >= limit})
	}
	relRate := func(m Mode) {
		c := Check{Target: fmt.Sprintf("%s %s: sample rate vs data rate (relative)", m.Group, m.Bin), Value: m.RelDiff,
			Want: fmt.Sprintf("within ±%g", MaxRelRate), Pass: m.RelDiff != nil && math.Abs(*m.RelDiff) <= MaxRelRate}
		if m.Truth != nil && math.Abs(m.Data-*m.Truth) > MaxRelRate**m.Truth {
			c.Note = fmt.Sprintf("judge unreliable: it puts %.1f%% of the real images here, their labels %.1f%%", 100*m.Data, 100**m.Truth)
		}
		q.Checks = append(q.Checks, c)
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
			c := atMost("W1 "+f.Name+" (spreads)", ptr(f.W1), MaxW1Spreads)
			if f.W1Judge != nil && *f.W1Judge > MaxW1Spreads {
				c.Note = fmt.Sprintf("judge unreliable: its reading of the real images is %.3f spreads from their labels", *f.W1Judge)
			}
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
		c := atMost("samples with ≠ 1 optic disc (segmenter)", rate, MaxArtefactRate)
		if q.Artefacts != nil && q.Artefacts.Data > MaxArtefactRate {
			c.Note = fmt.Sprintf("judge unreliable: the segmenter counts ≠ 1 disc in %.1f%% of real retinas", 100*q.Artefacts.Data)
		}
		frechet(FrechetRatioGAN)
	case "mnist gan":
		for _, m := range q.Modes {
			if m.Group == "class" {
				ok := m.Sample >= MinDigitRate && m.Sample <= MaxDigitRate
				q.Checks = append(q.Checks, Check{Target: "digit " + m.Bin + " rate", Value: ptr(m.Sample), Want: fmt.Sprintf("in [%g, %g]", MinDigitRate, MaxDigitRate), Pass: ok})
			}
		}
	}
	q.Pass = len(q.Checks) > 0
	for _, c := range q.Checks {
		q.Pass = q.Pass && c.Pass
	}
}
