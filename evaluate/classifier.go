package evaluate

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/dataset"
	"latentedit/engine"
	"latentedit/internal/artifact"
	"latentedit/train"
)

// Classifier is a CNN that tells a dataset's classes apart (MNIST's
// digits): the judge of quality for datasets whose one factor is a class
// "label", where an oracle's regression of a class index would read an
// ambiguous stroke as a 4.5. Its features are its logits; its reading of
// the factor is the most likely class.
type Classifier struct {
	FormatVersion int    `json:"format_version"`
	Kind          string `json:"kind"`           // "classifier"
	WeightsSHA256 string `json:"weights_sha256"` // of classifier.ckpt

	Dataset string `json:"dataset"` // whose training split it learned
	Classes int    `json:"classes"`
	Size    int    `json:"size"`
	Chan    int    `json:"channels"`
	Width   int    `json:"width"`
	Hidden  int    `json:"hidden"`
	Steps   int    `json:"steps"`
	// TestAccuracy is measured on the dataset's test split (TestN images),
	// which no step trained on.
	TestAccuracy float64 `json:"test_accuracy"`
	TestN        int     `json:"test_n"`

	ctx  *context.Context
	be   backends.Backend
	exec engine.LazyExec
}

// ClassifierFormat is the classifier.json layout this build reads and writes.
const ClassifierFormat = 1

// Classifier files inside a model directory.
const (
	ClassifierDir       = "classifier"
	ClassifierSpec      = "classifier.json"
	classifierWeights   = "classifier.ckpt"
	ClassifierStateFile = train.StateFile
	classifierScope     = "/classifier"
)

// net is the shared encoder (3×3 stem, stride-2 4×4 blocks to ≤ 8 px, dense
// Hidden) and a dense layer of one logit per class: [B, H, W, C] → [B, Classes].
func (c *Classifier) net(ctx *context.Context, x *graph.Node) *graph.Node {
	h := engine.Encoder{Width: c.Width, MaxWidth: 4 * c.Width, MinSide: 8, Hidden: c.Hidden}.Apply(ctx, x)
	return engine.Dense(ctx.In("out"), h, c.Classes, true)
}

// classLabels returns the class of every image of ds from its labels lab
// (Batch's): the factor "label", holding whole numbers ≥ 0.
func classLabels(lab []float32, ds dataset.Dataset) ([]int, error) {
	f := ds.Factors()
	col := slices.Index(f, "label")
	if col < 0 {
		return nil, fmt.Errorf("classifier: dataset %s has factors %v, no class \"label\"", ds.Name(), f)
	}
	out := make([]int, len(lab)/len(f))
	for i := range out {
		v := lab[i*len(f)+col]
		if v < 0 || v != float32(int(v)) {
			return nil, fmt.Errorf("classifier: dataset %s image %d has label %g, not a class", ds.Name(), i, v)
		}
		out[i] = int(v)
	}
	return out, nil
}

// TrainClassifier fits a classifier on every image of trainSet, then
// measures its accuracy on every image of test.
func TrainClassifier(trainSet, test dataset.Dataset, be backends.Backend, opt ClassifierOptions) (*Classifier, error) {
	if err := opt.defaults("classifier"); err != nil {
		return nil, err
	}
	h, w, ch := trainSet.Shape()
	if h != w {
		return nil, fmt.Errorf("classifier: square images only")
	}
	n := trainSet.Len()
	pix, lab, err := dataset.Batch(trainSet, seq(n))
	if err != nil {
		return nil, err
	}
	classes, err := classLabels(lab, trainSet)
	if err != nil {
		return nil, err
	}
	c := &Classifier{Dataset: trainSet.Name(), Classes: slices.Max(classes) + 1, Size: h, Chan: ch, Width: 16, Hidden: 128,
		Steps: opt.Steps, ctx: context.New().Checked(false), be: be}
	if err := c.ctx.SetRNGStateFromSeed(opt.Seed); err != nil {
		return nil, err
	}
	step, err := context.NewExec(be, c.ctx, func(ctx *context.Context, x, y *graph.Node) *graph.Node {
		logits := c.net(ctx.In("classifier"), x)
		// Cross-entropy with the one-hot targets y [B, Classes].
		loss := graph.Neg(graph.ReduceAllMean(graph.ReduceSum(graph.Mul(y, graph.LogSoftmax(logits, -1)), -1)))
		engine.Adam{Name: "classifier", LR: opt.LR, Scale: train.LRScale(ctx, x.Graph())}.Minimize(ctx, loss, engine.Variables(ctx, classifierScope))
		return loss
	})
	if err != nil {
		return nil, err
	}
	loop := &train.Loop{
		Name: "classifier " + trainSet.Name(), Dir: opt.Dir, Ctx: c.ctx, Scopes: []string{classifierScope, "/optim/classifier"},
		Keys: []string{"ce"}, Steps: opt.Steps, CheckpointEvery: max(1, opt.Steps/20), Schedule: opt.Schedule,
		Resume: opt.Resume, Log: opt.Log, JSON: opt.JSON,
	}
	err = supervised{step: step, seed: opt.Seed, pix: pix, img: []int{h, w, ch}, n: n, b: opt.Batch, nt: c.Classes,
		target: func(i int, dst []float32) { clear(dst); dst[classes[i]] = 1 }}.run(loop)
	if err != nil {
		return nil, err
	}
	return c, c.measure(test)
}

// measure sets TestAccuracy on every image of test.
func (c *Classifier) measure(test dataset.Dataset) error {
	n := test.Len()
	pix, lab, err := dataset.Batch(test, seq(n))
	if err != nil {
		return err
	}
	truth, err := classLabels(lab, test)
	if err != nil {
		return err
	}
	_, pred, err := c.Read(pix, n)
	if err != nil {
		return err
	}
	right := 0
	for i, p := range pred {
		if int(p[0]) == truth[i] {
			right++
		}
	}
	c.TestAccuracy, c.TestN = float64(right)/float64(n), n
	return nil
}

// FactorNames implements Judge: the one factor, "label".
func (c *Classifier) FactorNames() []string { return []string{"label"} }

// Read implements Judge: the logits of n images (flat [n, H, W, C] in
// [−1, 1]) and their most likely class, in fixed chunks of ReadChunk (the
// last one padded), so an image's reading does not depend on the call.
func (c *Classifier) Read(pix []float32, n int) (features, factors [][]float64, err error) {
	sz := c.Size * c.Size * c.Chan
	if n < 1 || len(pix) != n*sz {
		return nil, nil, fmt.Errorf("classifier: %d values for %d images of %dx%dx%d", len(pix), n, c.Size, c.Size, c.Chan)
	}
	exec, err := c.exec.Get(func() (*context.Exec, error) {
		return context.NewExec(c.be, c.ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
			return c.net(ctx.In("classifier").Reuse(), x)
		})
	})
	if err != nil {
		return nil, nil, err
	}
	out, err := engine.RunChunks("classifier read", exec, pix, n, []int{c.Size, c.Size, c.Chan}, ReadChunk, true)
	if err != nil {
		return nil, nil, err
	}
	for i := 0; i < n; i++ {
		logits := out[0][i*c.Classes : (i+1)*c.Classes]
		features = append(features, float64s(logits))
		factors = append(factors, []float64{float64(argmax(logits))})
	}
	return features, factors, err
}

// Save writes the classifier into dir (model/classifier) atomically.
func (c *Classifier) Save(dir string) error {
	return classifierFiles(dir).Save(c.ctx, classifierScope, nil, c, func(format int, kind, sha string) {
		c.FormatVersion, c.Kind, c.WeightsSHA256 = format, kind, sha
	})
}

func classifierFiles(dir string) artifact.Files {
	return artifact.Files{Dir: dir, Spec: ClassifierSpec, Weights: classifierWeights, Kind: "classifier", Format: ClassifierFormat}
}

// LoadClassifier reads a classifier directory. It refuses a spec with bad
// fields, a checkpoint whose checksum fails, and weights that do not fit
// the spec's network.
func LoadClassifier(dir string, be backends.Backend) (*Classifier, error) {
	f, c := classifierFiles(dir), &Classifier{}
	ctx, _, err := f.Load(c, func() (int, string, string) { return c.FormatVersion, c.Kind, c.WeightsSHA256 })
	if err != nil {
		return nil, err
	}
	switch spec := f.SpecPath(); {
	case c.Classes < 2:
		return nil, fmt.Errorf("classifier %s: field classes: %d, want ≥ 2", spec, c.Classes)
	case c.Size < 8 || c.Chan < 1 || c.Width < 1 || c.Hidden < 1:
		return nil, fmt.Errorf("classifier %s: inconsistent fields (size %d, channels %d, width %d, hidden %d)", spec, c.Size, c.Chan, c.Width, c.Hidden)
	}
	c.ctx, c.be = ctx, be
	if _, _, err := c.Read(make([]float32, c.Size*c.Size*c.Chan), 1); err != nil {
		return nil, fmt.Errorf("classifier %s: weights do not fit: %w", dir, err)
	}
	return c, nil
}

// argmax is the index of the largest value (the first, on ties: as
// graph.ArgMax).
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
