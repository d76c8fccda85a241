// Package evaluate judges edits and generators: oracles that read a
// dataset's ground-truth factors off an image, a classifier for datasets of
// classes, and the metrics built on them — of edits (attribute change,
// commutativity, identity) and of generated images against the data
// (quality.go: Fréchet distance, k-NN precision and recall, Wasserstein-1
// per factor, mode rates, the targets of issue #15). It imports the movers
// (edit) and the generators; nothing below it imports it. It does not
// segment fundus images: the optic-disc artefact rate is pseudocase's.
package evaluate

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/dataset"
	"latentedit/engine"
	"latentedit/internal/artifact"
	"latentedit/train"
)

// cyclic names the factors that are hues: an oracle predicts (cos, sin) of
// their angle so that 0.99 and 0.01 are close, as they look.
var cyclic = map[string]bool{"hair_colour": true, "eye_colour": true, "background": true}

// Oracle is a CNN regressor from an image to a dataset's factors, but for
// a class label (OracleFactors).
type Oracle struct {
	FormatVersion int    `json:"format_version"`
	Kind          string `json:"kind"`           // "oracle"
	WeightsSHA256 string `json:"weights_sha256"` // of oracle.ckpt

	Factors []string           `json:"factors"`
	Size    int                `json:"size"`
	Chan    int                `json:"channels"`
	Width   int                `json:"width"`
	Mean    []float64          `json:"mean"` // target normalisation
	Std     []float64          `json:"std"`
	R2      map[string]float64 `json:"r2"` // held-out R² per factor
	Steps   int                `json:"steps"`

	ctx   *context.Context
	be    backends.Backend
	exec  engine.LazyExec
	steer engine.LazyExec // Steer's loss and pixel gradient
}

// OracleFormat is the oracle.json layout this build reads and writes.
const OracleFormat = 1

// Oracle files inside a model directory.
const (
	OracleDir     = "oracle"
	OracleSpec    = "oracle.json"
	oracleWeights = "oracle.ckpt"
)

// OracleFactors are the factors of a dataset an oracle reads: all but the
// categorical ones.
func OracleFactors(factors []string) []string {
	var out []string
	for _, f := range factors {
		if !categorical[f] {
			out = append(out, f)
		}
	}
	return out
}

// targets encodes factor values: hues become (cos, sin).
func (o *Oracle) width() int {
	n := 0
	for _, f := range o.Factors {
		if cyclic[f] {
			n += 2
		} else {
			n++
		}
	}
	return n
}

func (o *Oracle) encode(labels []float32, dst []float32) {
	j := 0
	for i, f := range o.Factors {
		if cyclic[f] {
			a := 2 * math.Pi * float64(labels[i])
			dst[j], dst[j+1] = float32(math.Cos(a)), float32(math.Sin(a))
			j += 2
		} else {
			dst[j] = labels[i]
			j++
		}
	}
}

func (o *Oracle) decode(enc []float32) []float64 {
	out := make([]float64, len(o.Factors))
	j := 0
	for i, f := range o.Factors {
		if cyclic[f] {
			c := float64(enc[j])*o.Std[j] + o.Mean[j]
			s := float64(enc[j+1])*o.Std[j+1] + o.Mean[j+1]
			h := math.Atan2(s, c) / (2 * math.Pi)
			if h < 0 {
				h++
			}
			out[i] = h
			j += 2
		} else {
			out[i] = float64(enc[j])*o.Std[j] + o.Mean[j]
			j++
		}
	}
	return out
}

// net is the oracle CNN: the shared encoder (3×3 stem, stride-2 4×4 blocks
// to ≤ 8 px, dense 256), then one output per encoded factor.
func (o *Oracle) net(ctx *context.Context, x *graph.Node) *graph.Node {
	h := engine.Encoder{Width: o.Width, MaxWidth: 8 * o.Width, MinSide: 8, Hidden: 256}.Apply(ctx, x)
	return engine.Dense(ctx.In("out"), h, o.width(), true)
}

// OracleStateFile is the oracle's training state inside its run directory.
const OracleStateFile = train.StateFile

// TrainOracle fits an oracle on the images of ds (which must have factors),
// then measures R² per factor on the held-out images of heldOut.
func TrainOracle(ds, heldOut dataset.Dataset, be backends.Backend, opt OracleOptions) (*Oracle, error) {
	if err := opt.defaults("oracle"); err != nil {
		return nil, err
	}
	// A class index is no quantity to regress (the classifier judges it).
	all := ds.Factors()
	measurable := func(f string) bool { return !categorical[f] }
	ds, heldOut = dataset.Select(ds, measurable), dataset.Select(heldOut, measurable)
	h, w, c := ds.Shape()
	o := &Oracle{Factors: ds.Factors(), Size: h, Chan: c, Width: 16, Steps: opt.Steps, ctx: context.New().Checked(false), be: be}
	if len(o.Factors) == 0 {
		if len(all) > 0 {
			return nil, fmt.Errorf("oracle: dataset %s has only a class (%v), which its classifier judges: an oracle has no factor to learn, so InterFaceGAN and the study's matching have none to read", ds.Name(), all)
		}
		return nil, fmt.Errorf("oracle: dataset %s has no factors to learn (an oracle, and with it InterFaceGAN and the quality measures, needs a dataset with labelled factors)", ds.Name())
	}
	if h != w {
		return nil, fmt.Errorf("oracle: square images only")
	}
	n := ds.Len()
	pix, lab, err := dataset.Batch(ds, seq(n))
	if err != nil {
		return nil, err
	}
	nt := o.width()
	enc := make([]float32, n*nt)
	nf := len(o.Factors)
	for i := 0; i < n; i++ {
		o.encode(lab[i*nf:(i+1)*nf], enc[i*nt:(i+1)*nt])
	}
	o.Mean, o.Std = make([]float64, nt), make([]float64, nt)
	for j := 0; j < nt; j++ {
		var s, s2 float64
		for i := 0; i < n; i++ {
			v := float64(enc[i*nt+j])
			s += v
			s2 += v * v
		}
		o.Mean[j] = s / float64(n)
		o.Std[j] = math.Sqrt(math.Max(s2/float64(n)-o.Mean[j]*o.Mean[j], 1e-8))
	}
	for i := 0; i < n; i++ {
		for j := 0; j < nt; j++ {
			enc[i*nt+j] = float32((float64(enc[i*nt+j]) - o.Mean[j]) / o.Std[j])
		}
	}
	if err := o.ctx.SetRNGStateFromSeed(opt.Seed); err != nil {
		return nil, err
	}
	step, err := context.NewExec(be, o.ctx, func(ctx *context.Context, x, y *graph.Node) *graph.Node {
		pred := o.net(ctx.In("oracle"), x)
		loss := graph.ReduceAllMean(graph.Square(graph.Sub(pred, y)))
		engine.Adam{Name: "oracle", LR: opt.LR, Scale: train.LRScale(ctx, x.Graph())}.Minimize(ctx, loss, engine.Variables(ctx, "/oracle"))
		return loss
	})
	if err != nil {
		return nil, err
	}
	loop := &train.Loop{
		Name: "oracle " + ds.Name(), Dir: opt.Dir, Ctx: o.ctx, Scopes: []string{"/oracle", "/optim/oracle"},
		Keys: []string{"mse"}, Steps: opt.Steps, CheckpointEvery: max(1, opt.Steps/20), Schedule: opt.Schedule,
		Resume: opt.Resume, Log: opt.Log, JSON: opt.JSON,
	}
	err = supervised{step: step, seed: opt.Seed, pix: pix, img: []int{h, w, c}, n: n, b: opt.Batch, nt: nt,
		target: func(i int, dst []float32) { copy(dst, enc[i*nt:(i+1)*nt]) }}.run(loop)
	if err != nil {
		return nil, err
	}
	return o, o.measureR2(heldOut)
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// measureR2 sets o.R2 from held-out data. Hues are scored on their (cos,
// sin) encoding, averaged.
func (o *Oracle) measureR2(ds dataset.Dataset) error {
	n := ds.Len()
	pix, lab, err := dataset.Batch(ds, seq(n))
	if err != nil {
		return err
	}
	pred, err := o.predictEncoded(pix, n, 128, false)
	if err != nil {
		return err
	}
	nt, nf := o.width(), len(o.Factors)
	truth := make([]float32, nt)
	ssRes, ssTot := make([]float64, nt), make([]float64, nt)
	mean := make([]float64, nt)
	all := make([][]float32, n)
	for i := 0; i < n; i++ {
		o.encode(lab[i*nf:(i+1)*nf], truth)
		all[i] = append([]float32(nil), truth...)
		for j := range truth {
			mean[j] += float64(truth[j]) / float64(n)
		}
	}
	for i := 0; i < n; i++ {
		for j := 0; j < nt; j++ {
			p := float64(pred[i*nt+j])*o.Std[j] + o.Mean[j]
			ssRes[j] += (p - float64(all[i][j])) * (p - float64(all[i][j]))
			ssTot[j] += (float64(all[i][j]) - mean[j]) * (float64(all[i][j]) - mean[j])
		}
	}
	o.R2 = map[string]float64{}
	j := 0
	for _, f := range o.Factors {
		k := 1
		if cyclic[f] {
			k = 2
		}
		r := 0.0
		for q := 0; q < k; q++ {
			r += (1 - ssRes[j+q]/math.Max(ssTot[j+q], 1e-12)) / float64(k)
		}
		o.R2[f] = r
		j += k
	}
	return nil
}

// predictEncoded runs the network on n images in calls of chunk images;
// with pad every call holds exactly chunk (see engine.RunChunks).
func (o *Oracle) predictEncoded(pix []float32, n, chunk int, pad bool) ([]float32, error) {
	exec, err := o.exec.Get(func() (*context.Exec, error) {
		return context.NewExec(o.be, o.ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
			return o.net(ctx.In("oracle").Reuse(), x)
		})
	})
	if err != nil {
		return nil, err
	}
	out, err := engine.RunChunks("oracle predict", exec, pix, n, []int{o.Size, o.Size, o.Chan}, chunk, pad)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// Predict returns the factor values of n images (flat [n, H, W, C] in [-1, 1]).
func (o *Oracle) Predict(pix []float32, n int) ([][]float64, error) {
	enc, err := o.checkedEncoded(pix, n)
	if err != nil {
		return nil, err
	}
	return rows(enc, n, o.decode), nil
}

// ReadChunk is the batch size ReadFactors and PredictChunked read in: fixed,
// so that a reading does not depend on how many images a call holds.
const ReadChunk = 8

// PredictChunked is Predict over n images in fixed chunks of ReadChunk, the
// last one padded.
func (o *Oracle) PredictChunked(pix []float32, n int) ([][]float64, error) {
	_, factors, err := o.Read(pix, n)
	return factors, err
}

// FactorNames names the columns of Predict's and Read's factor values.
func (o *Oracle) FactorNames() []string { return o.Factors }

// Read implements Judge: the Features and the Predict values of n images
// from one pass of the network, in fixed chunks of ReadChunk (the last one
// padded), so an image's reading does not depend on the call.
func (o *Oracle) Read(pix []float32, n int) (features, factors [][]float64, err error) {
	sz := o.Size * o.Size * o.Chan
	if n < 1 || len(pix) != n*sz {
		return nil, nil, fmt.Errorf("oracle: %d values for %d images of %d", len(pix), n, sz)
	}
	enc, err := o.predictEncoded(pix, n, ReadChunk, true)
	if err != nil {
		return nil, nil, err
	}
	return rows(enc, n, float64s), rows(enc, n, o.decode), nil
}

func float64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// Save writes the oracle into dir (model/oracle) atomically.
func (o *Oracle) Save(dir string) error {
	return oracleFiles(dir).Save(o.ctx, "/oracle", nil, o, func(format int, kind, sha string) {
		o.FormatVersion, o.Kind, o.WeightsSHA256 = format, kind, sha
	})
}

func oracleFiles(dir string) artifact.Files {
	return artifact.Files{Dir: dir, Spec: OracleSpec, Weights: oracleWeights, Kind: "oracle", Format: OracleFormat}
}

// LoadOracle reads an oracle directory. It refuses a spec with bad fields,
// a checkpoint whose checksum fails, and weights that do not fit the spec.
func LoadOracle(dir string, be backends.Backend) (*Oracle, error) {
	f, o := oracleFiles(dir), &Oracle{}
	ctx, _, err := f.Load(o, func() (int, string, string) { return o.FormatVersion, o.Kind, o.WeightsSHA256 })
	if err != nil {
		return nil, err
	}
	if len(o.Factors) == 0 || len(o.Mean) != o.width() || len(o.Std) != o.width() || o.Size < 8 || o.Width < 1 {
		return nil, fmt.Errorf("oracle %s: inconsistent fields (factors %d, mean %d, std %d, size %d)", f.SpecPath(), len(o.Factors), len(o.Mean), len(o.Std), o.Size)
	}
	o.ctx, o.be = ctx, be
	if _, err := o.Predict(make([]float32, o.Size*o.Size*o.Chan), 1); err != nil {
		return nil, fmt.Errorf("oracle %s: weights do not fit: %w", dir, err)
	}
	return o, nil
}

// Features returns the oracle's normalised outputs for n images (flat
// [n, H, W, C] in [-1, 1]): the feature space of the Fréchet distance.
func (o *Oracle) Features(pix []float32, n int) ([][]float64, error) {
	enc, err := o.checkedEncoded(pix, n)
	if err != nil {
		return nil, err
	}
	return rows(enc, n, float64s), nil
}

// rows applies f to each of the n equal rows of flat.
func rows(flat []float32, n int, f func([]float32) []float64) [][]float64 {
	w := len(flat) / n
	out := make([][]float64, n)
	for i := range out {
		out[i] = f(flat[i*w : (i+1)*w])
	}
	return out
}

// checkedEncoded validates the input size, then predicts the normalised encoding.
func (o *Oracle) checkedEncoded(pix []float32, n int) ([]float32, error) {
	if n < 1 || len(pix) != n*o.Size*o.Size*o.Chan {
		return nil, fmt.Errorf("oracle: %d values for %d images of %dx%dx%d", len(pix), n, o.Size, o.Size, o.Chan)
	}
	return o.predictEncoded(pix, n, 128, false)
}
