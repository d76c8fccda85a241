package evaluate

import (
	"math/rand/v2"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
	"latentedit/train"
)

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
