// Package discover is the one unsupervised trainer shared by the learned
// editing methods (linear, warped, curvilinear, potential): with the generator G frozen,
// it samples z, a direction k and a signed amount ε, renders G(z) and
// G(φ_k^ε(z)), and trains the editor together with a reconstructor R that
// must tell k (cross-entropy) and ε (L1) from the pair. Directions that R can
// tell apart are directions that change the image in distinct ways.
//
// The movers live in package edit; this package holds the loop and the judge.
package discover

import (
	"fmt"

	"latentedit/edit"
	"latentedit/train"
)

// Config is one discovery run. Zero fields take the defaults of Default.
type Config struct {
	Method          string         `json:"method"`
	K               int            `json:"k"`
	Steps           int            `json:"steps"`
	Batch           int            `json:"batch"`
	LR              float64        `json:"lr"`                    // Adam, editor and reconstructor
	Schedule        train.Schedule `json:"lr_schedule,omitempty"` // multiplier of LR by step (constant when zero)
	Lambda          float64        `json:"lambda"`                // weight of the L1 loss on ε
	LogDet          float64        `json:"logdet"`                // weight of the editor's penalty (curvilinear log-det², potential PDE residual, on top of its own weights)
	EpsMin          float64        `json:"eps_min"`               // |ε| range; 0: the method's default
	EpsMax          float64        `json:"eps_max"`
	Width           int            `json:"width"` // reconstructor base width
	Seed            int64          `json:"seed"`
	CheckpointEvery int            `json:"checkpoint_every"`
	Options         edit.Options   `json:"options,omitempty"` // method hyper-parameters
	// Space is the latent space trained in (z when empty): set by Run from
	// the model view it is given, and checked on --resume.
	Space string `json:"space,omitempty"`
}

// Default is the configuration of the papers' official code where it applies
// (loss CE + 0.25·L1, Adam 1e-4, log-det weight 1), with K = 8.
func Default(method string) Config {
	return Config{Method: method, K: 8, Steps: 2000, Batch: 32, LR: 1e-4, Lambda: 0.25, LogDet: 1,
		Width: 32, Seed: 1, CheckpointEvery: 200}
}

// Validate reports the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Method != "linear" && c.Method != "warped" && c.Method != "curvilinear" && c.Method != "potential":
		return fmt.Errorf("discover: method %q is not learned by discover (linear, warped, curvilinear, potential)", c.Method)
	case c.K < 2 || c.K > 512:
		return fmt.Errorf("discover: k %d out of [2, 512]", c.K)
	case c.Steps < 0 || c.Batch < 2 || c.LR <= 0 || c.Lambda < 0 || c.LogDet < 0 || c.Width < 4:
		return fmt.Errorf("discover: steps %d, batch %d (≥2), lr %g (>0), lambda %g, logdet %g, width %d (≥4)", c.Steps, c.Batch, c.LR, c.Lambda, c.LogDet, c.Width)
	case c.EpsMin < 0 || c.EpsMax < c.EpsMin:
		return fmt.Errorf("discover: eps range [%g, %g]", c.EpsMin, c.EpsMax)
	case c.CheckpointEvery < 1:
		return fmt.Errorf("discover: checkpoint_every %d", c.CheckpointEvery)
	}
	if err := c.Schedule.Validate(); err != nil {
		return fmt.Errorf("discover: %w", err)
	}
	return nil
}
