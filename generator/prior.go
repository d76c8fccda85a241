package generator

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"latentedit/dataset"
	"latentedit/engine"
	"latentedit/internal/artifact"
	"latentedit/internal/mixture"
)

// PriorFile is the VAE's latent prior inside a model directory; model.json's
// "prior" names it with its checksum.
const PriorFile = "prior.ckpt"

// PriorInfo is model.json's record of a fitted prior.
type PriorInfo struct {
	File       string `json:"file"`       // PriorFile
	SHA256     string `json:"sha256"`     // of File
	Components int    `json:"components"` // mixture components
	Images     int    `json:"images"`     // training images whose encodings it was fitted to
	Seed       int64  `json:"seed"`       // initialisation seed of the fit
	Command    string `json:"command,omitempty"`
}

// Prior is a Gaussian mixture over a VAE's latent space, fitted to the
// encoder's posterior means of training images: ex-post density estimation
// (Ghosh et al. 2020, "From variational to deterministic autoencoders").
//
// Why: a VAE's aggregate posterior is not the N(0, I) its KL term pulls it
// towards. Decoding N(0, I) draws lands in the holes between the regions the
// encoder uses, which is where the blurred, mixed faces of the faces VAE came
// from (Fréchet 23× real-vs-real). Seeds drawn through the mixture land where
// real images encode. Editors still move the VAE's own latent z: only where a
// seed starts changes.
type Prior = mixture.Model

// drawLatent fills z with one draw from r: the standard-normal ε of the
// latent stream first (so without a prior z is exactly Latent's), then,
// with a prior, one uniform for the component and z = μ_c + L_c ε.
func drawLatent(p *Prior, r *rand.Rand, z []float32) {
	eps := make([]float64, len(z))
	for j := range eps {
		eps[j] = r.NormFloat64()
	}
	if p == nil {
		for j, e := range eps {
			z[j] = float32(e)
		}
		return
	}
	out := make([]float64, len(z))
	p.Sample(eps, r.Float64(), out)
	for j, v := range out {
		z[j] = float32(v)
	}
}

// Latent is the latent of seed s: Latent(s, d) drawn through the prior when
// there is one. Every place that turns a seed into a latent for a model —
// gallery, report, quality, editor fits, discovery batches — goes through
// here or through Draw, so "seed 3" is one picture everywhere.
func (m *Model) Latent(seed int64) []float32 {
	if m.frame != nil {
		return m.liftOne(m.Root().Latent(seed))
	}
	z := make([]float32, m.LatentDim())
	drawLatent(m.prior, seedStream(seed), z)
	return z
}

// Latents returns the latents of seeds seed, seed+1, … seed+n−1.
func (m *Model) Latents(seed int64, n int) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		out[i] = m.Latent(seed + int64(i))
	}
	return out
}

// DrawLatent fills z from r through the model's prior (standard normal
// without one): for trainers that draw latents from their own streams.
func (m *Model) DrawLatent(r *rand.Rand, z []float32) {
	if m.frame != nil {
		m.drawCode(r, z)
		return
	}
	drawLatent(m.prior, r, z)
}

// Prior is the model's latent prior, nil for N(0, I).
func (m *Model) Prior() *Prior { return m.prior }

// SavePrior writes p to dir/PriorFile atomically and returns its sha256.
func SavePrior(dir string, p *Prior, meta map[string]string) (string, error) {
	k, d := len(p.Weights), p.Dim()
	w := make([]float32, k)
	mu := make([]float32, k*d)
	l := make([]float32, k*d*d)
	for c := 0; c < k; c++ {
		w[c] = float32(p.Weights[c])
		for i := 0; i < d; i++ {
			mu[c*d+i] = float32(p.Means[c][i])
		}
		for i := 0; i < d*d; i++ {
			l[c*d*d+i] = float32(p.Chol[c][i])
		}
	}
	path := filepath.Join(dir, PriorFile)
	vals := map[string]*tensors.Tensor{
		"/prior/weights": tensors.FromFlatDataAndDimensions(w, k),
		"/prior/means":   tensors.FromFlatDataAndDimensions(mu, k, d),
		"/prior/chol":    tensors.FromFlatDataAndDimensions(l, k, d, d),
	}
	if err := engine.SaveTensors(path, vals, meta); err != nil {
		return "", err
	}
	return artifact.FileSHA256(path)
}

// loadPrior reads the prior model.json names, checking its checksum and
// every shape against the model's latent dimension.
func loadPrior(dir string, info Info) (*Prior, error) {
	pi := info.Prior
	if pi == nil {
		return nil, nil
	}
	spec := filepath.Join(dir, InfoFile)
	if pi.File != PriorFile {
		return nil, fmt.Errorf("%s: field prior.file: %q, want %q", spec, pi.File, PriorFile)
	}
	if info.Kind != "vae" {
		return nil, fmt.Errorf("%s: field prior: a %s has no fitted prior (only a VAE's latents are encoded)", spec, info.Kind)
	}
	path := filepath.Join(dir, pi.File)
	if len(pi.SHA256) != 64 {
		return nil, fmt.Errorf("%s: field prior.sha256: %q is not a sha256", spec, pi.SHA256)
	}
	if got, err := artifact.FileSHA256(path); err != nil {
		return nil, fmt.Errorf("prior: %w", err)
	} else if got != pi.SHA256 {
		return nil, fmt.Errorf("%s: sha256 %s does not match %s's prior.sha256 %s (file truncated, corrupted or replaced)", path, got[:12], spec, pi.SHA256[:12])
	}
	vals, _, err := engine.ReadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	get := func(name string, rank int) (*tensors.Tensor, error) {
		t := vals["/prior/"+name]
		if t == nil {
			return nil, fmt.Errorf("%s: no tensor /prior/%s", path, name)
		}
		if t.Rank() != rank {
			return nil, fmt.Errorf("%s: /prior/%s has shape %v, want rank %d", path, name, t.Shape().Dimensions, rank)
		}
		return t, nil
	}
	wt, err := get("weights", 1)
	if err != nil {
		return nil, err
	}
	mt, err := get("means", 2)
	if err != nil {
		return nil, err
	}
	lt, err := get("chol", 3)
	if err != nil {
		return nil, err
	}
	k, d := wt.Shape().Dimensions[0], info.LatentDim
	if md := mt.Shape().Dimensions; md[0] != k || md[1] != d {
		return nil, fmt.Errorf("%s: /prior/means has shape %v, want [%d %d]", path, md, k, d)
	}
	if ld := lt.Shape().Dimensions; ld[0] != k || ld[1] != d || ld[2] != d {
		return nil, fmt.Errorf("%s: /prior/chol has shape %v, want [%d %d %d]", path, ld, k, d, d)
	}
	if k != pi.Components {
		return nil, fmt.Errorf("%s: %d components, but %s's prior.components says %d", path, k, spec, pi.Components)
	}
	w, mu, l := tensors.MustCopyFlatData[float32](wt), tensors.MustCopyFlatData[float32](mt), tensors.MustCopyFlatData[float32](lt)
	p := &Prior{Weights: make([]float64, k), Means: make([][]float64, k), Chol: make([][]float64, k)}
	for c := 0; c < k; c++ {
		p.Weights[c] = float64(w[c])
		p.Means[c] = make([]float64, d)
		for i := range p.Means[c] {
			p.Means[c][i] = float64(mu[c*d+i])
		}
		p.Chol[c] = make([]float64, d*d)
		for i := range p.Chol[c] {
			p.Chol[c][i] = float64(l[c*d*d+i])
		}
	}
	if err := p.Validate(d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// AttachPrior writes p into the model directory dir and records it in
// model.json (prior first, model.json last and atomically, so a reader never
// sees model.json name a prior that is not there).
func AttachPrior(dir string, p *Prior, pi PriorInfo) error {
	info, err := ReadInfo(dir)
	if err != nil {
		return err
	}
	if info.Kind != "vae" {
		return fmt.Errorf("prior: model %s is a %s; a fitted prior needs an encoder (a VAE)", dir, info.Kind)
	}
	if err := p.Validate(info.LatentDim); err != nil {
		return err
	}
	sum, err := SavePrior(dir, p, map[string]string{"components": fmt.Sprint(len(p.Weights))})
	if err != nil {
		return err
	}
	pi.File, pi.SHA256, pi.Components = PriorFile, sum, len(p.Weights)
	info.Prior = &pi
	return writeInfo(dir, info)
}

// PriorFit is what FitPrior measured.
type PriorFit struct {
	Images     int       `json:"images"`
	Components int       `json:"components"`
	Iterations int       `json:"iterations"`
	Curve      []float64 `json:"curve"` // mean log-likelihood of the training encodings per EM iteration
	// Mean log-density of held-out images' encodings under the fitted
	// mixture and under N(0, I): how much closer to the encodings it is.
	HeldOutLogDensity float64 `json:"held_out_log_density"`
	HeldOutNormal     float64 `json:"held_out_normal_log_density"`
	HeldOut           int     `json:"held_out"`
}

// FitPrior encodes the first n images of train (posterior means) and fits a
// K-component mixture to them; it scores the fit on the first n/10 images of
// held (another split or seed). progress (may be nil) reports the stage.
func FitPrior(m *Model, train, held dataset.Dataset, n int, o mixture.Options, progress func(stage string, done, total int)) (*Prior, PriorFit, error) {
	if m.Info.Kind != "vae" {
		return nil, PriorFit{}, fmt.Errorf("prior: model %s is a %s; a fitted prior needs an encoder (a VAE)", m.Dir, m.Info.Kind)
	}
	if n < 1 || n > train.Len() {
		return nil, PriorFit{}, fmt.Errorf("prior: %d images asked, the data set has %d", n, train.Len())
	}
	if progress == nil {
		progress = func(string, int, int) {}
	}
	encode := func(stage string, ds dataset.Dataset, n int) ([]float64, error) {
		h, w, c := m.ImageShape()
		const chunk = 256
		var out []float64
		for lo := 0; lo < n; lo += chunk {
			hi := min(n, lo+chunk)
			pix := make([]float32, (hi-lo)*h*w*c)
			for i := lo; i < hi; i++ {
				img, _, err := ds.Sample(i)
				if err != nil {
					return nil, fmt.Errorf("prior: image %d: %w", i, err)
				}
				if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
					return nil, fmt.Errorf("prior: image %d is %dx%d, the model takes %dx%d", i, b.Dx(), b.Dy(), w, h)
				}
				dataset.ToFloats(img, c, pix[(i-lo)*h*w*c:(i-lo+1)*h*w*c])
			}
			mu, err := m.EncodeFloats(pix, hi-lo)
			if err != nil {
				return nil, err
			}
			for _, v := range mu {
				out = append(out, float64(v))
			}
			progress(stage, hi, n)
		}
		return out, nil
	}
	x, err := encode("encode", train, n)
	if err != nil {
		return nil, PriorFit{}, err
	}
	d := m.LatentDim()
	if o.MaxIter == 0 {
		o.MaxIter = mixture.DefaultMaxIter
	}
	o.Progress = func(it int, _ float64) { progress("em", it, o.MaxIter) }
	p, curve, err := mixture.Fit(x, n, d, o)
	if err != nil {
		return nil, PriorFit{}, fmt.Errorf("prior: %w", err)
	}
	fit := PriorFit{Images: n, Components: o.K, Iterations: len(curve), Curve: curve, HeldOut: max(1, min(n/10, held.Len()))}
	hx, err := encode("held-out", held, fit.HeldOut)
	if err != nil {
		return nil, PriorFit{}, err
	}
	for i, v := range p.LogDensity(hx, fit.HeldOut) {
		fit.HeldOutLogDensity += v / float64(fit.HeldOut)
		s := 0.0
		for _, x := range hx[i*d : (i+1)*d] {
			s += x * x
		}
		fit.HeldOutNormal += -0.5 * (s + float64(d)*math.Log(2*math.Pi)) / float64(fit.HeldOut)
	}
	return p, fit, nil
}
