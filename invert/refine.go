package invert

import (
	"cmp"
	"fmt"
	"math"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
	"latentedit/generator"
)

// Defaults of a refinement: Adam on the latent at LR, and a small pull
// (Prior × mean z²) towards the prior's typical set so the fit stays a
// latent the editors know. Without a guess, Candidates seeded starts per
// picture are optimised side by side: inversion through a GAN has local
// minima, and the best of a few starts is much more often a good fit than
// one start.
const (
	DefaultLR         = 0.05
	DefaultPrior      = 1e-3
	DefaultCandidates = 4
)

// Options of an inversion.
type Options struct {
	Steps      int     // Adam steps on the latent (0: the guess as it is)
	LR         float64 // 0: DefaultLR
	Prior      float64 // weight of the pull towards the prior; 0: DefaultPrior, < 0: none
	Candidates int     // seeded starts per picture when there is no guess; 0: DefaultCandidates
	Seed       int64   // first seed of those starts; 0: 1
	// NoGuess ignores the encoder (a GAN's trained one or a VAE's own) and
	// starts from the seeded candidates, as inversion did before encoders.
	NoGuess bool
}

func (o Options) lr() float64 { return cmp.Or(o.LR, DefaultLR) }
func (o Options) prior() float64 {
	switch {
	case o.Prior < 0:
		return 0
	case o.Prior == 0:
		return DefaultPrior
	}
	return o.Prior
}

// Hooks let a caller share the machine and follow the work.
type Hooks struct {
	// Run wraps every execution of the model (the server takes a core for
	// it); nil runs fn.
	Run func(fn func() error) error
	// Step is called after each optimisation step with the best mean
	// squared error per picture so far; an error stops the inversion.
	Step func(step int, best []float64) error
}

func (h Hooks) run(fn func() error) error {
	if h.Run == nil {
		return fn()
	}
	return h.Run(fn)
}

// Result is the inversion of one picture.
type Result struct {
	Latent    []float32 `json:"latent"`
	MSE       float64   `json:"mse"`        // pixels in [-1, 1], of the latent's picture against the target
	PSNR      float64   `json:"psnr_db"`    // of that error
	GuessPSNR float64   `json:"guess_psnr"` // of the best start (the encoder's guess, or the best seeded start)
	Steps     int       `json:"steps"`
}

// Inverter inverts pictures through one model, seen in one space.
type Inverter struct {
	m   *generator.Model
	enc *Encoder // GAN: the trained guess (nil: seeded starts)

	once sync.Once
	exec *context.Exec
	err  error
}

// New returns the inverter of m (seen in the space to invert into) with
// enc, an encoder trained for m in that space, as the guess (nil: a VAE
// guesses with its own encoder, a GAN starts from seeded latents).
func New(m *generator.Model, enc *Encoder) (*Inverter, error) {
	if enc != nil && (enc.Space != m.Space() || enc.LatentDim != m.LatentDim() || enc.ModelSHA256 != m.Info.WeightsSHA256) {
		return nil, fmt.Errorf("invert: the encoder (%s, %d values, generator %.12s…) is not for model %s in %s (%d values, %.12s…)",
			enc.Space, enc.LatentDim, enc.ModelSHA256, m.Dir, m.Space(), m.LatentDim(), m.Info.WeightsSHA256)
	}
	return &Inverter{m: m, enc: enc}, nil
}

// Model is the model inverted through.
func (v *Inverter) Model() *generator.Model { return v.m }

// Guesser names where the starting latents come from: "encoder" (a GAN's
// trained encoder), "vae-encoder" (a VAE's own) or "seeds".
func (v *Inverter) Guesser() string {
	switch {
	case v.enc != nil:
		return "encoder"
	case v.m.Info.Kind == "vae" && v.m.Space() == generator.SpaceZ:
		return "vae-encoder"
	}
	return "seeds"
}

// Guess returns the encoder's latents of n pictures (flat [n, H, W, C]);
// an error when the inverter has no encoder.
func (v *Inverter) Guess(pix []float32, n int) ([]float32, error) {
	switch v.Guesser() {
	case "encoder":
		return v.enc.Encode(pix, n)
	case "vae-encoder":
		return v.m.EncodeFloats(pix, n)
	}
	return nil, fmt.Errorf("invert: model %s has no encoder for %s (latentedit invert --train-encoder trains one)", v.m.Dir, v.m.Space())
}

// lossExec is the compiled loss-and-gradient of the fit: the latents are an
// input, not a variable, so one executable serves every job at once without
// adding variables to the model's shared context; Adam runs on the host.
func (v *Inverter) lossExec() (*context.Exec, error) {
	v.once.Do(func() {
		m := v.m
		if v.err = m.Differentiable(); v.err != nil { // the fit descends G's gradient
			return
		}
		v.err = engine.Safe("invert: build", func() error {
			var err error
			v.exec, err = context.NewExec(m.Backend(), m.Context(), func(ctx *context.Context, z, x, prior *graph.Node) []*graph.Node {
				img := m.Build(ctx, z)                                                 // [B, H, W, C]
				mse := graph.ReduceMean(graph.Square(graph.Sub(img, x)), 1, 2, 3)      // [B]
				pull := graph.Mul(graph.ReduceMean(graph.Square(z), 1), prior)         // [B]
				grad := graph.Gradient(graph.ReduceAllSum(graph.Add(mse, pull)), z)[0] // [B, d]: candidates are independent
				return []*graph.Node{mse, grad}
			})
			return err
		})
	})
	return v.exec, v.err
}

// Invert finds the latents of the pictures (each flat [H, W, C] in [-1, 1],
// the model's size): from the guess, or from opt.Candidates seeded starts
// per picture, opt.Steps steps of Adam on the pixel error (plus the prior
// pull). The result keeps, per picture, the best latent seen, so a
// refinement never ends worse than its start.
func (v *Inverter) Invert(pics [][]float32, opt Options, hooks Hooks) ([]Result, error) {
	m := v.m
	n, d := len(pics), m.LatentDim()
	h, w, c := m.ImageShape()
	sz := h * w * c
	if n == 0 {
		return nil, nil
	}
	if opt.Steps < 0 {
		return nil, fmt.Errorf("invert: %d steps", opt.Steps)
	}
	target := make([]float32, 0, n*sz)
	for i, p := range pics {
		if len(p) != sz {
			return nil, fmt.Errorf("invert: picture %d has %d values, the model draws %dx%dx%d", i, len(p), h, w, c)
		}
		target = append(target, p...)
	}
	// The starts: one guess per picture, or K seeded latents each (fixed
	// seeds: the same picture gives the same latent).
	var z []float32
	k := 1
	if v.Guesser() != "seeds" && !opt.NoGuess {
		if err := hooks.run(func() error {
			var err error
			z, err = v.Guess(target, n)
			return err
		}); err != nil {
			return nil, err
		}
	} else {
		k = cmp.Or(opt.Candidates, DefaultCandidates)
		seeds := m.Latents(cmp.Or(opt.Seed, 1), k)
		for i := 0; i < n; i++ {
			for _, s := range seeds {
				z = append(z, s...)
			}
		}
	}
	b := n * k
	x := make([]float32, 0, b*sz)
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			x = append(x, pics[i]...)
		}
	}
	xT := tensors.FromFlatDataAndDimensions(x, b, h, w, c)
	priorT := tensors.FromScalar(float32(opt.prior()))
	// No steps: the starts are only scored, by the forward pass alone (an
	// ONNX generator has no gradient, but its encoder's guess stands).
	var exec *context.Exec
	if opt.Steps > 0 {
		var err error
		if exec, err = v.lossExec(); err != nil {
			return nil, err
		}
	}
	fits := make([]Result, n)
	best := make([]float64, n)
	for i := range fits {
		fits[i] = Result{Latent: make([]float32, d), Steps: opt.Steps}
		best[i] = math.Inf(1)
	}
	adam := Adam{LR: opt.lr()}
	// Steps+1 evaluations: the losses are of z before each step's update,
	// and the last one scores the final latents.
	for step := 0; step <= opt.Steps; step++ {
		var mse, grad []float32
		if err := hooks.run(func() error {
			if exec == nil {
				pix, err := m.GenerateFloats(z, b)
				if err != nil {
					return err
				}
				mse = make([]float32, b)
				for j := range mse {
					mse[j] = float32(MSE(pix[j*sz:(j+1)*sz], x[j*sz:(j+1)*sz]))
				}
				return nil
			}
			return engine.Safe("invert", func() error {
				out, err := exec.Exec(tensors.FromFlatDataAndDimensions(z, b, d), xT, priorT)
				if err != nil {
					return err
				}
				mse = tensors.MustCopyFlatData[float32](out[0])
				grad = tensors.MustCopyFlatData[float32](out[1])
				return nil
			})
		}); err != nil {
			return nil, err
		}
		for j, l := range mse {
			i := j / k
			if float64(l) < best[i] {
				best[i] = float64(l)
				copy(fits[i].Latent, z[j*d:(j+1)*d])
			}
		}
		if step == 0 {
			for i := range fits {
				fits[i].GuessPSNR = PSNR(best[i])
			}
		}
		if step == opt.Steps {
			break
		}
		adam.Step(z, grad)
		if hooks.Step != nil {
			if err := hooks.Step(step+1, append([]float64(nil), best...)); err != nil {
				return nil, err
			}
		}
	}
	for i := range fits {
		for _, val := range fits[i].Latent {
			if math.IsNaN(float64(val)) || math.IsInf(float64(val), 0) {
				return nil, fmt.Errorf("invert: picture %d: the fit diverged (latent value %v)", i, val)
			}
		}
		fits[i].MSE, fits[i].PSNR = best[i], PSNR(best[i])
	}
	return fits, nil
}
