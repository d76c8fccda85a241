package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"image"
	"sync"
	"time"

	"latentedit/dataset"
	"latentedit/invert"
)

// FitImage centre-crops img to a square and resizes it (bilinear) to w×h,
// the way an uploaded picture is made the model's size before it is
// inverted: invert.Fit, without the crop's record.
func FitImage(img image.Image, w, h int) *image.RGBA {
	fit, _ := invert.Fit(img, w, h)
	return fit
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

// invert finds the upload's latent with the one inversion of package
// invert: the encoder's guess alone (method encoder), or refined by Adam on
// the latent, from the guess when the model has an encoder (a VAE's own, or
// one trained for the GAN) and from seeded starts otherwise.
func (s *Server) invert(ctx context.Context, j *invertJob, req InvertRequest, target []float32) ([]float32, error) {
	run := func(fn func() error) error {
		if aerr := s.work(ctx, fn); aerr != nil {
			return aerr
		}
		return nil
	}
	if req.Method == InvertEncoder {
		var z []float32
		if err := run(func() error {
			var err error
			z, err = s.inv.Guess(target, 1)
			return err
		}); err != nil {
			return nil, err
		}
		j.update(func(st *invertStatus) { st.Step = 1 })
		return z, nil
	}
	fits, err := s.inv.Invert([][]float32{target}, invert.Options{Steps: req.Steps}, invert.Hooks{
		Run: run,
		Step: func(step int, best []float64) error {
			// The page polls while it waits: a job nobody polls belongs to
			// a client that left, and it gives its cores back.
			if d := j.unpolled(); d > s.cfg.AbandonAfter {
				return fmt.Errorf("invert: abandoned after step %d: not polled for %v", step, d.Round(time.Second))
			}
			j.update(func(st *invertStatus) { st.Step, st.Loss = step, best[0] })
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return fits[0].Latent, nil
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
