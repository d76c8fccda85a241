package generator

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
	"latentedit/internal/artifact"
)

// DiscriminatorFile holds a GAN's discriminator beside its generator. The
// trainer writes it at every checkpoint (its sha256 in model.json) because
// the discriminator is the one judge that knows what the generator's own
// images look like when they are real: pseudocase's region refinement uses
// it as its realism term. Imported generators and models trained before
// this file existed have none; ExportDiscriminator recovers it from a run's
// train state.
const DiscriminatorFile = "generator/discriminator.ckpt"

// ErrNoDiscriminator is wrapped by the error of LoadDiscriminator on a
// model that ships none.
var ErrNoDiscriminator = errors.New("the model ships no discriminator")

// Discriminator is a loaded GAN discriminator, frozen.
type Discriminator struct {
	m       *Model
	ctx     *context.Context
	refs    []float32 // with a minibatch-stddev layer: the group's fixed company (mbstdGroup − 1 images)
	realism engine.LazyExec
}

// mbstdGroup is the group size of the discriminators' minibatch-standard-
// deviation layer (minibatchStd(x, 4) in both architectures).
const mbstdGroup = 4

// refSeed draws the fixed company of an image scored by a D with a
// minibatch-stddev layer.
const refSeed = 0x5eed

// writeDiscriminator writes the /discriminator variables vals to dir's
// DiscriminatorFile atomically and returns its sha256.
func writeDiscriminator(dir string, vals map[string]*tensors.Tensor) (string, error) {
	path := filepath.Join(dir, DiscriminatorFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	if err := engine.SaveTensors(path, vals, map[string]string{"kind": "discriminator"}); err != nil {
		return "", err
	}
	return artifact.FileSHA256(path)
}

// discriminatorVars are the variables of ctx under /discriminator: the
// weights and, for a spectral-norm D, its power-iteration vectors.
func discriminatorVars(ctx *context.Context) map[string]*tensors.Tensor {
	vals := map[string]*tensors.Tensor{}
	for v := range ctx.IterVariables() {
		if engine.InScope(v.Scope(), "/discriminator") {
			vals[v.ScopeAndName()] = v.MustValue()
		}
	}
	return vals
}

// ExportDiscriminator writes the discriminator of the run in dir from its
// train state (TrainStateFile) and records it in model.json: for runs
// checkpointed before the trainer wrote DiscriminatorFile itself.
func ExportDiscriminator(dir string) error {
	info, err := ReadInfo(dir)
	if err != nil {
		return err
	}
	if info.Kind != "gan" {
		return fmt.Errorf("model %s: a %s has no discriminator", dir, info.Kind)
	}
	state := filepath.Join(dir, TrainStateFile)
	all, meta, err := engine.ReadCheckpoint(state)
	if err != nil {
		return fmt.Errorf("model %s: %w", dir, err)
	}
	if s := meta["step"]; s != "" && s != fmt.Sprint(info.Step) {
		return fmt.Errorf("model %s: %s is at step %s, model.json at %d: resume the run to a checkpoint first", dir, state, s, info.Step)
	}
	vals := map[string]*tensors.Tensor{}
	for name, t := range all {
		if engine.InScope(filepath.Dir(name), "/discriminator") {
			vals[name] = t
		}
	}
	if len(vals) == 0 {
		return fmt.Errorf("model %s: %s holds no /discriminator variables", dir, state)
	}
	sum, err := writeDiscriminator(dir, vals)
	if err != nil {
		return fmt.Errorf("model %s: %w", dir, err)
	}
	info.DiscriminatorSHA256 = sum
	return writeInfo(dir, info)
}

// LoadDiscriminator reads the discriminator of m's directory, checks its
// checksum against model.json and that it fits m's architecture.
func LoadDiscriminator(m *Model) (*Discriminator, error) {
	if m.root != nil {
		m = m.root
	}
	dir := m.Dir
	if m.Info.Kind != "gan" || m.Info.DiscriminatorSHA256 == "" {
		why := "a " + m.Info.Kind + " has none"
		switch _, err := os.Stat(filepath.Join(dir, TrainStateFile)); {
		case m.Info.Kind != "gan":
		case err == nil:
			why = fmt.Sprintf("trained before the trainer saved it; `latentedit train --out %s --export-discriminator` recovers it from the run's train state", dir)
		default:
			why = "imported, or trained before the trainer saved it, and its train state is not here to recover it from"
		}
		return nil, fmt.Errorf("model %s: %w (%s)", dir, ErrNoDiscriminator, why)
	}
	if m.Info.Config.ImportOnly() {
		return nil, fmt.Errorf("model %s: %w: arch %s is import-only", dir, ErrNoDiscriminator, m.Info.Config.ArchName())
	}
	path := filepath.Join(dir, DiscriminatorFile)
	if err := artifact.CheckWeights(filepath.Join(dir, InfoFile)+" (discriminator_sha256)", path, m.Info.DiscriminatorSHA256); err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	ctx := context.New()
	if _, err := engine.LoadCheckpoint(ctx, path); err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	for v := range ctx.IterVariables() {
		v.SetTrainable(false)
	}
	d := &Discriminator{m: m, ctx: ctx}
	if m.Arch.MBStd {
		// Scored in the groups of a batch, an image's loss would depend on
		// which others share its group — on how a run is blocked and
		// sharded. Each image is scored in a group of its own with the
		// generator's images of fixed latents, as D saw fakes in training.
		var err error
		z := Latents(refSeed, mbstdGroup-1, m.LatentDim())
		if d.refs, err = m.GenerateFloats(append(append(z[0], z[1]...), z[2]...), mbstdGroup-1); err != nil {
			return nil, fmt.Errorf("model %s: discriminator reference images: %w", dir, err)
		}
	}
	h, w, c := m.ImageShape()
	if _, _, err := d.Realism(make([]float32, h*w*c), 1); err != nil {
		return nil, fmt.Errorf("model %s: %s does not fit the architecture of model.json: %w", dir, path, err)
	}
	return d, nil
}

// Realism returns, for n images pix [n, H, W, C] in [-1, 1], the
// generator's non-saturating loss softplus(−D(x)) per image (low: D takes
// it for real) and its gradient with respect to the pixels. Each image's
// loss depends on that image alone: a D with a minibatch-standard-deviation
// layer reads every image in a group of its own with three fixed images
// of the generator.
func (d *Discriminator) Realism(pix []float32, n int) (loss []float64, grad []float32, err error) {
	h, w, c := d.m.ImageShape()
	if n < 1 || len(pix) != n*h*w*c {
		return nil, nil, fmt.Errorf("discriminator: %d values for %d images of %dx%dx%d", len(pix), n, h, w, c)
	}
	a, norm := d.m.Arch, d.m.Info.Config.DNorm
	var fixed []any
	if d.refs != nil {
		fixed = append(fixed, tensors.FromFlatDataAndDimensions(d.refs, mbstdGroup-1, h, w, c))
	}
	exec, err := d.realism.Get(func() (*context.Exec, error) {
		return context.NewExec(d.m.Backend(), d.ctx.Checked(false), func(ctx *context.Context, in []*graph.Node) []*graph.Node {
			x, batch := in[0], in[0]
			if len(in) > 1 {
				// [x; r₁ ×n; r₂ ×n; r₃ ×n]: minibatchStd groups rows
				// i, n+i, 2n+i, 3n+i, so image i meets only r₁, r₂, r₃.
				b := x.Shape().Dimensions[0]
				parts := []*graph.Node{x}
				for r := range mbstdGroup - 1 {
					ref := graph.Slice(in[1], graph.AxisRange(r, r+1))
					parts = append(parts, graph.BroadcastToDims(ref, b, h, w, c))
				}
				batch = graph.Concatenate(parts, 0)
			}
			l := graph.Softplus(graph.Neg(a.Discriminate(ctx.In("discriminator").Reuse(), batch, norm, false))) // [B′]
			l = graph.Slice(l, graph.AxisRange(0, x.Shape().Dimensions[0]))                                     // [B]
			return []*graph.Node{l, graph.Gradient(graph.ReduceAllSum(l), x)[0]}
		})
	})
	if err != nil {
		return nil, nil, err
	}
	return engine.LossGrad("discriminator", exec, n, []engine.Rows{{Data: pix, Dims: []int{h, w, c}}}, fixed...)
}
