package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"image"
	"math"
	"sync"
	"time"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"golang.org/x/image/draw"

	"latentedit/dataset"
	"latentedit/engine"
)

// FitImage centre-crops img to a square and resizes it (bilinear) to w×h,
// the way an uploaded picture is made the model's size before it is encoded.
func FitImage(img image.Image, w, h int) *image.RGBA {
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	// Not image.Rect(x0, y0, 0, 0): Rect sorts its corners, which made this
	// the top-left square instead of the centre one.
	min0 := image.Pt(b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2)
	crop := image.Rectangle{Min: min0, Max: min0.Add(image.Pt(side, side))}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.BiLinear.Scale(dst, dst.Bounds(), img, crop, draw.Src, nil)
	return dst
}

// invertStatus is what GET /api/invert/{id} returns: progress while the job
// runs, the latent and its picture when it is done.
type invertStatus struct {
	ID     string    `json:"id"`
	Method string    `json:"method"`
	Step   int       `json:"step"`
	Steps  int       `json:"steps"`
	Loss   float64   `json:"loss"` // mean squared pixel error (pixels in [-1, 1]) of the best candidate so far
	Done   bool      `json:"done"`
	Error  string    `json:"error,omitempty"`
	Target string    `json:"target"` // the upload as the model sees it (cropped, resized): a PNG data URL
	Latent []float32 `json:"latent,omitempty"`
	Image  string    `json:"image,omitempty"`
}

type invertJob struct {
	mu       sync.Mutex
	st       invertStatus
	finished time.Time
	polled   time.Time // last poll (or the start): a job nobody polls is abandoned
	cancel   context.CancelFunc
}

// touch records a poll.
func (j *invertJob) touch() {
	j.mu.Lock()
	j.polled = time.Now()
	j.mu.Unlock()
}

// unpolled is how long ago the job was last polled.
func (j *invertJob) unpolled() time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	return time.Since(j.polled)
}

func (j *invertJob) status() invertStatus {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.st
	st.Latent = append([]float32(nil), j.st.Latent...)
	return st
}

func (j *invertJob) update(fn func(*invertStatus)) {
	j.mu.Lock()
	fn(&j.st)
	if j.st.Done && j.finished.IsZero() {
		j.finished = time.Now()
	}
	j.mu.Unlock()
}

// jobTTL is how long a finished job's result stays to be polled.
const jobTTL = 10 * time.Minute

// jobs holds the running and recently finished inversions.
type jobs struct {
	mu   sync.Mutex
	byID map[string]*invertJob
	max  int // running at once
}

// add registers a job, dropping finished ones older than jobTTL; it refuses
// when max jobs are still running, so uploads cannot queue unbounded work.
func (js *jobs) add(j *invertJob) *apiError {
	js.mu.Lock()
	defer js.mu.Unlock()
	running := 0
	for id, o := range js.byID {
		o.mu.Lock()
		done, fin := o.st.Done, o.finished
		o.mu.Unlock()
		if done && time.Since(fin) > jobTTL {
			delete(js.byID, id)
		} else if !done {
			running++
		}
	}
	if running >= js.max {
		return &apiError{Status: 429, Msg: fmt.Sprintf("%d inversions are running already; wait for one to finish", running)}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	j.st.ID = hex.EncodeToString(b[:])
	js.byID[j.st.ID] = j
	return nil
}

func (js *jobs) get(id string) (*invertJob, bool) {
	js.mu.Lock()
	defer js.mu.Unlock()
	j, ok := js.byID[id]
	return j, ok
}

func (js *jobs) cancelAll() {
	js.mu.Lock()
	defer js.mu.Unlock()
	for _, j := range js.byID {
		j.cancel()
	}
}

// invertCandidates is how many starting latents are optimised side by side:
// inversion through a GAN has local minima, and the best of a few starts is
// much more often a good fit than one start.
const invertCandidates = 4

// Inversion hyper-parameters: Adam on z, and a small pull towards the
// prior's typical set so the fit stays a latent the editors know.
const (
	invertLR    = 0.05
	invertPrior = 1e-3
)

// inverter is the compiled loss-and-gradient of the fit: z is an input, not
// a variable, so one executable serves every job at once without adding
// variables to the model's shared context; Adam runs on the host over the
// 4×64 numbers.
type inverter struct {
	once sync.Once
	exec *mlctx.Exec
	err  error
}

func (s *Server) inverterExec() (*mlctx.Exec, error) {
	inv := &s.inv
	inv.once.Do(func() {
		m := s.m
		if inv.err = m.Differentiable(); inv.err != nil { // the fit descends G's gradient
			return
		}
		inv.err = engine.Safe("invert: build", func() error {
			var err error
			inv.exec, err = mlctx.NewExec(m.Backend(), m.Context(), func(ctx *mlctx.Context, z, x *graph.Node) []*graph.Node {
				img := m.Build(ctx, z)                                                      // [B, H, W, C]
				mse := graph.ReduceMean(graph.Square(graph.Sub(img, x)), 1, 2, 3)           // [B]
				prior := graph.MulScalar(graph.ReduceMean(graph.Square(z), 1), invertPrior) // [B]
				loss := graph.Add(mse, prior)
				grad := graph.Gradient(graph.ReduceAllSum(loss), z)[0] // [B, d]: candidates are independent
				return []*graph.Node{mse, grad}
			})
			return err
		})
	})
	return inv.exec, inv.err
}

// runInvert does one job to the end, taking a core from the semaphore per
// optimisation step so an inversion shares the machine with slider edits.
func (s *Server) runInvert(ctx context.Context, j *invertJob, req InvertRequest, target []float32) {
	z, err := s.invert(ctx, j, req, target)
	var pic string
	if err == nil {
		if aerr := s.work(ctx, func() error {
			img, err := Render(s.m, z)
			if err == nil {
				pic, err = pngDataURL(img)
			}
			return err
		}); aerr != nil {
			err = aerr
		}
	}
	j.update(func(st *invertStatus) {
		st.Done = true
		if err != nil {
			st.Error = err.Error()
			return
		}
		st.Latent, st.Image = z, pic
	})
}

func (s *Server) invert(ctx context.Context, j *invertJob, req InvertRequest, target []float32) ([]float32, error) {
	if req.Method == InvertEncoder {
		var z []float32
		aerr := s.work(ctx, func() error {
			var err error
			z, err = s.m.EncodeFloats(target, 1)
			return err
		})
		if aerr != nil {
			return nil, aerr
		}
		j.update(func(st *invertStatus) { st.Step = 1 })
		return z, nil
	}
	exec, err := s.inverterExec()
	if err != nil {
		return nil, err
	}
	d := s.m.LatentDim()
	h, w, c := s.m.ImageShape()
	// Fixed starting seeds: the same upload gives the same latent.
	z := make([]float32, 0, invertCandidates*d)
	for _, v := range s.m.Latents(1, invertCandidates) {
		z = append(z, v...)
	}
	m1 := make([]float64, len(z))
	m2 := make([]float64, len(z))
	const b1, b2, eps = 0.9, 0.999, 1e-8
	best, bestLoss := make([]float32, d), math.Inf(1)
	xT := tensors.FromFlatDataAndDimensions(target, 1, h, w, c)
	for step := 1; step <= req.Steps; step++ {
		// The page polls while it waits: a job nobody polls belongs to a
		// client that left, and it gives its cores back.
		if d := j.unpolled(); d > s.cfg.AbandonAfter {
			return nil, fmt.Errorf("invert: abandoned after step %d: not polled for %v", step-1, d.Round(time.Second))
		}
		var mse, grad []float32
		aerr := s.work(ctx, func() error {
			return engine.Safe("invert", func() error {
				out, err := exec.Exec(tensors.FromFlatDataAndDimensions(z, invertCandidates, d), xT)
				if err != nil {
					return err
				}
				mse = tensors.MustCopyFlatData[float32](out[0])
				grad = tensors.MustCopyFlatData[float32](out[1])
				return nil
			})
		})
		if aerr != nil {
			return nil, aerr
		}
		// The losses are of z before this step's update: remember the best
		// latent seen, then move every candidate.
		for i, l := range mse {
			if float64(l) < bestLoss {
				bestLoss = float64(l)
				copy(best, z[i*d:(i+1)*d])
			}
		}
		c1 := 1 - math.Pow(b1, float64(step))
		c2 := 1 - math.Pow(b2, float64(step))
		for i, g := range grad {
			m1[i] = b1*m1[i] + (1-b1)*float64(g)
			m2[i] = b2*m2[i] + (1-b2)*float64(g)*float64(g)
			z[i] -= float32(invertLR * (m1[i] / c1) / (math.Sqrt(m2[i]/c2) + eps))
		}
		j.update(func(st *invertStatus) { st.Step, st.Loss = step, bestLoss })
	}
	for _, v := range best {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("invert: the fit diverged (latent value %v)", v)
		}
	}
	return best, nil
}

// targetFloats is the upload at the model's size and channels, flat
// [H, W, C] in [-1, 1], and that picture as a PNG data URL for the page.
func (s *Server) targetFloats(img image.Image) ([]float32, string, error) {
	h, w, c := s.m.ImageShape()
	fit := FitImage(img, w, h)
	pix := make([]float32, h*w*c)
	dataset.ToFloats(fit, c, pix)
	url, err := pngDataURL(dataset.FromFloats(pix, h, w, c))
	return pix, url, err
}
