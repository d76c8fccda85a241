package evaluate

import (
	"cmp"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
	"latentedit/train"
)

// SupervisedOptions configure the training of a judge from labelled images:
// TrainOracle (OracleOptions) and TrainClassifier (ClassifierOptions). Zero
// fields take the defaults.
type SupervisedOptions struct {
	Steps int     // Adam steps
	Batch int     // default 64
	LR    float64 // default 1e-3
	// Schedule defaults to a tenfold drop for the last quarter of the steps:
	// the subtle factors (a 32×32 smile is a few pixels of mouth) are learned
	// last and need the finer steps.
	Schedule train.Schedule
	Seed     int64  // weights and batch order (default 1)
	Dir      string // run directory: state and curves for --resume ("" keeps none)
	Resume   bool
	Log      io.Writer
	JSON     bool
}

// OracleOptions configure TrainOracle.
type OracleOptions = SupervisedOptions

// ClassifierOptions configure TrainClassifier.
type ClassifierOptions = SupervisedOptions

// defaults fills the zero fields; who names the trainer in the error.
func (o *SupervisedOptions) defaults(who string) error {
	o.Batch, o.LR, o.Seed = cmp.Or(o.Batch, 64), cmp.Or(o.LR, 1e-3), cmp.Or(o.Seed, 1)
	if o.Schedule == (train.Schedule{}) {
		o.Schedule = train.Schedule{Kind: "step", At: 0.75, Factor: 0.1}
	}
	if o.Steps < 0 || o.Batch < 1 || !(o.LR > 0) {
		return fmt.Errorf("%s: steps %d (≥0), batch %d (≥1), lr %g (>0)", who, o.Steps, o.Batch, o.LR)
	}
	return nil
}

// supervised is the one training run of the judges that learn from labelled
// images (the oracle, the class classifier): step is a compiled Adam step
// (x [B,H,W,C], y [B,T]) → loss, and each step draws its batch of b images
// from pix by (seed, step), so a resumed run draws the same batches.
type supervised struct {
	step   *context.Exec
	seed   int64
	pix    []float32 // n images, H·W·C each
	img    []int     // H, W, C
	n, b   int
	nt     int                        // targets per image
	target func(i int, dst []float32) // writes image i's targets into dst (length nt)
}

// run fills loop.Step and loop.Plot (one curve per loop key) and runs loop.
func (s supervised) run(loop *train.Loop) error {
	sz := s.img[0] * s.img[1] * s.img[2]
	xb := make([]float32, s.b*sz)
	yb := make([]float32, s.b*s.nt)
	loop.Step = func(step int) ([]float64, error) {
		r := rand.New(rand.NewPCG(uint64(s.seed), uint64(step)))
		for j := 0; j < s.b; j++ {
			i := r.IntN(s.n)
			copy(xb[j*sz:(j+1)*sz], s.pix[i*sz:(i+1)*sz])
			s.target(i, yb[j*s.nt:(j+1)*s.nt])
		}
		var loss float64
		err := engine.Safe(loop.Name+" step", func() error {
			out, err := s.step.Exec(tensors.FromFlatDataAndDimensions(xb, s.b, s.img[0], s.img[1], s.img[2]),
				tensors.FromFlatDataAndDimensions(yb, s.b, s.nt))
			if err != nil {
				return err
			}
			loss = float64(tensors.ToScalar[float32](out[0]))
			return nil
		})
		return []float64{loss}, err
	}
	loop.Plot = &train.Plot{Title: loop.Name, Keys: loop.Keys}
	_, err := loop.Run()
	return err
}
