// Package interop brings generators trained in PyTorch into latentedit: it
// reads a state dict (.pt/.pth or .safetensors, through interop/tensorfile),
// maps its parameters onto one of the architectures of package generator
// (layouts.go names every key), and writes an ordinary model directory that
// generator.Load — and so every command — reads unchanged. The PyTorch
// modules of those layouts are in interop/torch/latentedit_models.py.
//
// It also sends editors back (export.go): an editor's directions or weights
// in a safetensors, pt or npy file, which interop/torch/latentedit_edit.py
// applies in PyTorch exactly as the editor's EditBatch does.
//
// It never leaves a partial model directory: everything is written into a
// temporary directory beside the output, loaded back and checked, and only
// then renamed into place.
package interop

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"latentedit/generator"
	"latentedit/internal/artifact"
	"latentedit/internal/figure"
	"latentedit/interop/tensorfile"
)

// Options of one import.
type Options struct {
	From string // the PyTorch file (.pt, .pth, .safetensors) or, for ArchONNX, the .onnx file
	Arch string // one of Archs
	Out  string // the model directory to create; it must not exist

	// Latent is the latent dimension: sn_resnet's (default 128, which the
	// file's dense layer must match); for dcgan it is read from the file and
	// Latent, when set, must agree.
	Latent int
	// Widths is an sn_resnet's channel list; when nil it is read from the
	// file's batch norms (GANLatentDiscovery's 1024…64, or any narrower or
	// wider variant), with the --arch's number of blocks.
	Widths []int
	// Truncation is the style or stylegan2 generator's ψ at sampling,
	// recorded in model.json (0 or 1: none); a state dict holds w_avg but
	// not ψ, and rosinality's none (the import computes it).
	Truncation float64
	// stylegan2: the size, channel multiplier and mapping depth, each
	// checked against the file when not 0; LRMul is the mapping's lr_mul
	// (train.py's lr_mlp; 0: its default 0.01).
	Size, ChannelMultiplier, NMLP int
	LRMul                         float64
	// Range is the [LO, HI] of the generator's raw output (stylegan2,
	// onnx: no tanh), recorded as model.json's config.output_range and
	// mapped to [-1, 1] in the graph; nil: already [-1, 1].
	Range []float64
	// Dataset is recorded in model.json ("imported" when empty): name the
	// dataset the generator was trained on to evaluate it against that data.
	Dataset string
	Backend backends.Backend
	Command string // recorded in model.json
}

// SampleCount is the number of images in an import's samples.png (fewer than
// a training run's 64: the grid is a first look, and at sn_resnet64's size
// every image costs about 3 GMAC on the CPU).
const SampleCount = 16

// Import converts o.From into the model directory o.Out and returns its
// model.json. On any error nothing is left at o.Out.
func Import(o Options) (info generator.Info, err error) {
	fail := func(e error) (generator.Info, error) {
		return generator.Info{}, fmt.Errorf("import %s: %w", o.From, e)
	}
	if o.From == "" || o.Out == "" {
		return fail(errors.New("need a file to import and an output directory"))
	}
	if o.Backend == nil {
		return fail(errors.New("no backend"))
	}
	if o.Truncation != 0 && o.Arch != ArchStyle && o.Arch != ArchStyleGAN2 {
		return fail(fmt.Errorf("truncation %g: only --arch style and stylegan2 have a truncation ψ", o.Truncation))
	}
	if err := checkRange(o); err != nil {
		return fail(err)
	}
	if _, err := os.Stat(o.Out); err == nil {
		return fail(fmt.Errorf("output %s already exists: choose a new directory", o.Out))
	} else if !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	if o.Arch == ArchONNX {
		return importONNXDir(o)
	}
	ts, format, err := tensorfile.Read(o.From)
	if err != nil {
		return generator.Info{}, fmt.Errorf("import: %w", err)
	}
	ts = stripPrefix(ts)
	var (
		arch   generator.Arch
		params []param
	)
	switch o.Arch {
	case ArchDCGAN:
		arch, params, err = dcganLayout(ts, o.Latent)
	case ArchSNResNet32, ArchSNResNet64:
		widths := generator.SNResNet32
		if o.Arch == ArchSNResNet64 {
			widths = generator.SNResNet64
		}
		arch, params, err = snResNetLayout(ts, widths, o.Widths, o.Latent)
	case ArchStyle:
		arch, params, err = styleLayout(ts, o.Latent)
	case ArchStyleGAN2:
		arch, params, err = stylegan2Layout(ts, o)
	default:
		err = fmt.Errorf("unknown --arch %q: want one of %v", o.Arch, Archs)
	}
	if err != nil {
		return fail(fmt.Errorf("arch %s: %w", o.Arch, err))
	}
	vars, err := resolve(ts, params)
	if err != nil {
		return fail(fmt.Errorf("arch %s: %w", o.Arch, err))
	}
	sum, err := artifact.FileSHA256(o.From)
	if err != nil {
		return fail(err)
	}
	cfg := generator.Default("gan", o.Dataset)
	if o.Dataset == "" {
		cfg.Dataset = "imported"
	}
	cfg.Size, cfg.Channels, cfg.Latent, cfg.Steps = arch.Size, arch.Channels, arch.Latent, 0
	cfg.ArchKind, cfg.Base, cfg.Widths = arch.Kind, arch.Base, arch.Widths
	cfg.MapDepth, cfg.Noise, cfg.Truncation = arch.MapDepth, arch.Noise, o.Truncation
	cfg.OutputRange = o.Range
	if err := cfg.Validate(); err != nil {
		return fail(err)
	}
	info = generator.Info{
		Kind: "gan", LatentDim: cfg.Latent, Height: cfg.Size, Width: cfg.Size, Channels: cfg.Channels,
		Dataset: cfg.Dataset, Config: cfg, Command: o.Command,
		Source: &generator.Source{File: filepath.Base(o.From), SHA256: sum, Format: format, Arch: o.Arch},
	}

	// Everything goes into a temporary directory beside o.Out (the same file
	// system, so the final rename is atomic) that is removed on any failure.
	parent := filepath.Dir(filepath.Clean(o.Out))
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(o.Out)+".import-")
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	vals := make(map[string]*tensors.Tensor, len(vars))
	for name, t := range vars {
		vals[name] = tensors.FromFlatDataAndDimensions(t.Data, t.Shape...)
	}
	if arch.Kind == generator.ArchStyleGAN2 {
		vals[wAvgVar] = tensors.FromFlatDataAndDimensions(make([]float32, arch.Latent), arch.Latent)
	}
	if err = generator.WriteModel(tmp, info, vals, map[string]string{"source_sha256": sum}); err != nil {
		return fail(err)
	}
	// Load runs the generator once: what every later command will read is
	// checked here, before the directory exists under its name.
	m, err := generator.Load(tmp, o.Backend)
	if err != nil {
		return fail(err)
	}
	if arch.Kind == generator.ArchStyleGAN2 {
		// rosinality's state dict holds no mean latent (generate.py draws
		// one with mean_latent(4096)): the mean of w over the seeded
		// latents 0…4095 becomes w_avg, truncation's centre.
		if vals[wAvgVar], err = meanW(m); err != nil {
			return fail(err)
		}
		if err = generator.WriteModel(tmp, info, vals, map[string]string{"source_sha256": sum}); err != nil {
			return fail(err)
		}
		if m, err = generator.Load(tmp, o.Backend); err != nil {
			return fail(err)
		}
	}
	if err = commit(tmp, o.Out, m); err != nil {
		return fail(err)
	}
	return m.Info, nil
}

// importONNXDir is Import of an ONNX file, through the same temporary
// directory, load check and rename.
func importONNXDir(o Options) (info generator.Info, err error) {
	fail := func(e error) (generator.Info, error) {
		return generator.Info{}, fmt.Errorf("import %s: arch onnx: %w", o.From, e)
	}
	parent := filepath.Dir(filepath.Clean(o.Out))
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(o.Out)+".import-")
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if _, err = importONNX(o, tmp); err != nil {
		return fail(err)
	}
	m, err := generator.Load(tmp, o.Backend)
	if err != nil {
		return fail(err)
	}
	if err = commit(tmp, o.Out, m); err != nil {
		return fail(err)
	}
	return m.Info, nil
}

// commit draws the samples grid of m (SampleCount latents in one batch: a
// second batch size after Load's single latent) into tmp and renames tmp to
// out.
func commit(tmp, out string, m *generator.Model) error {
	imgs, err := m.Generate(generator.Latents(1000, SampleCount, m.LatentDim()))
	if err != nil {
		return err
	}
	if err = figure.Grid(filepath.Join(tmp, generator.SamplesPNG), imgs, 4, 256); err != nil {
		return err
	}
	if err = os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

const wAvgVar = "/generator/w_avg"

// meanW is the w_avg of an imported stylegan2: generator.MeanW, the mean w of
// the seeded latents 0…4095 (generator.FrameLatents), as many as rosinality's
// generate.py averages.
func meanW(m *generator.Model) (*tensors.Tensor, error) {
	mean, err := m.MeanW()
	if err != nil {
		return nil, err
	}
	return tensors.FromFlatDataAndDimensions(mean, len(mean)), nil
}
