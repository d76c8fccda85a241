// Package generator holds the generative models latentedit edits — a DCGAN-
// style GAN and a convolutional VAE sharing one generator architecture — with
// their training steps (run by package train's loop) and the model directory format every later command
// reads (model.json + checkpoints, see DESIGN.md).
//
// A loaded Model is a pure function z ↦ G(z): it never depends on the rest of
// the batch, so edits are reproducible one latent at a time.
package generator

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"latentedit/dataset"
	"latentedit/engine"
	"latentedit/internal/artifact"
	"latentedit/internal/atomicfile"
	"latentedit/train"
)

// FormatVersion is the model.json layout this build reads and writes.
const FormatVersion = 1

// Files inside a model directory.
const (
	InfoFile       = "model.json"
	WeightsFile    = "generator/weights.ckpt" // sampling weights: the EMA generator (GAN) or decoder + encoder (VAE)
	TrainStateFile = "generator/train.ckpt"   // everything, for --resume
	CurvesCSV      = "curves.csv"
	CurvesPNG      = "curves.png"
	SamplesPNG     = "samples.png"
)

// Config is everything that defines a training run. Defaults are in Default.
type Config struct {
	Kind            string         `json:"kind"`    // "gan" or "vae"
	Dataset         string         `json:"dataset"` // registered dataset name
	DataN           int            `json:"data_n"`  // training images (procedural datasets render this many)
	DataSeed        int64          `json:"data_seed"`
	DataDir         string         `json:"data_dir,omitempty"` // the folder dataset's images (--data-dir)
	Size            int            `json:"size"`               // image side
	Channels        int            `json:"channels"`           // 1 or 3 (from the dataset)
	Latent          int            `json:"latent_dim"`
	Base            int            `json:"base"`                  // channel width of the largest feature maps
	Loss            string         `json:"loss"`                  // GAN: "ns" (non-saturating) or "hinge"
	DNorm           string         `json:"d_norm"`                // GAN: "sn" (spectral) or "bn" (batch norm) in D
	Beta            float64        `json:"beta"`                  // VAE: weight of the KL term
	EMA             float64        `json:"ema"`                   // GAN: decay of the sampling generator's weight average
	Batch           int            `json:"batch"`                 // batch size
	LR              float64        `json:"lr"`                    // Adam learning rate
	Schedule        train.Schedule `json:"lr_schedule,omitempty"` // multiplier of LR by step (constant when zero)
	Steps           int            `json:"steps"`                 // total steps
	Seed            int64          `json:"seed"`                  // weights, latents and data order
	SampleEvery     int            `json:"sample_every"`
	CheckpointEvery int            `json:"checkpoint_every"`
	NoCorrelation   bool           `json:"no_correlation,omitempty"` // faces: independent factors

	// Architecture (model.json records it; an empty Arch is dcgan).
	ArchKind   string  `json:"arch,omitempty"`       // "dcgan", "style", "sn_resnet", "stylegan2" or "onnx"
	Widths     []int   `json:"widths,omitempty"`     // sn_resnet: channels of the 4×4 seed and after each residual up-block; stylegan2: at 4, 8, … px
	MapDepth   int     `json:"map_depth,omitempty"`  // style, stylegan2: mapping layers
	Noise      bool    `json:"noise,omitempty"`      // style: per-block noise inputs
	MBStd      bool    `json:"mbstd,omitempty"`      // GAN: minibatch-stddev layer in D (always on for style)
	Truncation float64 `json:"truncation,omitempty"` // style, stylegan2: ψ at sampling (0 or 1: none)
	R1         float64 `json:"r1,omitempty"`         // style: R1 weight γ (0: DefaultR1)
	R1Every    int     `json:"r1_every,omitempty"`   // style: lazy R1 period (0: 16)
	Mixing     float64 `json:"mixing,omitempty"`     // style: probability of style mixing in training
	Convs      int     `json:"convs,omitempty"`      // style: modulated 3×3 convolutions per upsampling block (0 or 1: one; 2: StyleGAN2's two)
	// OutputRange [LO, HI] is the range of an imported generator's raw
	// output (stylegan2, onnx: no tanh), mapped to [-1, 1] in the graph as
	// 2·(out−LO)/(HI−LO)−1; none: the output is already in [-1, 1].
	OutputRange []float64 `json:"output_range,omitempty"`
}

// ArchName is the architecture, dcgan when unset (model.json of old runs).
func (c Config) ArchName() string {
	if c.ArchKind == "" {
		return ArchDCGAN
	}
	return c.ArchKind
}

// ImportOnly reports whether the architecture is one latentedit imports but
// does not train: its discriminator and losses are not part of this project.
func (c Config) ImportOnly() bool {
	n := c.ArchName()
	return n == ArchSNResNet || n == ArchStyleGAN2 || n == ArchONNX
}

// DefaultR1 is the style GAN's R1 weight when none is given. StyleGAN2-ADA's
// heuristic 0.0002·S²/batch (0.0256 at 64×64, batch 32) let our D win from
// step 500 on and the generator collapse; at 32×32, γ from 10 to 50 kept D
// balanced and covered the hue modes (docs/models.md, "The first long run
// collapsed"). The heuristic assumes equalised learning rates and
// augmentation, which this project does not use.
const DefaultR1 = 10

// r1 returns the R1 weight and period of a style GAN run.
func (c Config) r1() (gamma float64, every int) {
	gamma, every = c.R1, c.R1Every
	if gamma == 0 {
		gamma = DefaultR1
	}
	if every == 0 {
		every = 16
	}
	return gamma, every
}

// Default returns the documented defaults for kind on dataset.
func Default(kind, dataset string) Config {
	return Config{
		Kind: kind, Dataset: dataset, DataN: 20000, Latent: 64, Base: 32,
		Loss: "ns", DNorm: "sn", Beta: 1, EMA: 0.999, Batch: 64, LR: 2e-4,
		Steps: 10000, Seed: 1, SampleEvery: 500, CheckpointEvery: 500,
	}
}

// Validate reports the first field that is out of range.
func (c Config) Validate() error {
	switch {
	case c.Kind != "gan" && c.Kind != "vae":
		return fmt.Errorf("config: kind %q: want gan or vae", c.Kind)
	case c.Dataset == "":
		return errors.New("config: dataset is empty")
	case c.Latent < 1 || c.Latent > 4096:
		return fmt.Errorf("config: latent_dim %d out of [1, 4096]", c.Latent)
	case c.Loss != "ns" && c.Loss != "hinge":
		return fmt.Errorf("config: loss %q: want ns or hinge", c.Loss)
	case c.DNorm != "sn" && c.DNorm != "bn":
		return fmt.Errorf("config: d_norm %q: want sn or bn", c.DNorm)
	case c.Batch < 2 || c.Steps < 0 || c.LR <= 0 || c.Beta < 0 || c.EMA < 0 || c.EMA >= 1:
		return fmt.Errorf("config: batch %d (≥2), steps %d (≥0), lr %g (>0), beta %g (≥0), ema %g ([0,1))", c.Batch, c.Steps, c.LR, c.Beta, c.EMA)
	case c.SampleEvery < 1 || c.CheckpointEvery < 1:
		return fmt.Errorf("config: sample_every %d and checkpoint_every %d must be ≥1", c.SampleEvery, c.CheckpointEvery)
	}
	if err := c.Schedule.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	switch {
	case c.ArchName() != ArchDCGAN && c.ArchName() != ArchStyle && c.ArchName() != ArchSNResNet && c.ArchName() != ArchStyleGAN2 && c.ArchName() != ArchONNX:
		return fmt.Errorf("config: arch %q: want dcgan, style, sn_resnet, stylegan2 or onnx", c.ArchKind)
	case c.ImportOnly() && c.Kind != "gan":
		return fmt.Errorf("config: arch %s is an imported GAN generator; a VAE uses dcgan", c.ArchName())
	case c.ArchName() == ArchStyle && c.Kind != "gan":
		return fmt.Errorf("config: arch style is a GAN generator; a VAE uses dcgan")
	case c.ArchName() == ArchStyle && (c.MapDepth < 1 || c.MapDepth > 8):
		return fmt.Errorf("config: map_depth %d out of [1, 8]", c.MapDepth)
	case c.Truncation < 0 || c.Truncation > 1 || c.R1 < 0 || c.R1Every < 0 || c.Mixing < 0 || c.Mixing > 1:
		return fmt.Errorf("config: truncation %g ([0,1]), r1 %g (≥0), r1_every %d (≥0), mixing %g ([0,1])", c.Truncation, c.R1, c.R1Every, c.Mixing)
	case c.Convs < 0 || c.Convs > 2 || (c.Convs == 2 && c.ArchName() != ArchStyle):
		return fmt.Errorf("config: convs %d: 1 or 2 modulated convolutions per block, and 2 only for arch style", c.Convs)
	case c.OutputRange != nil && !slices.Contains(RangeArchs, c.ArchName()):
		return fmt.Errorf("config: output_range %v: only arch %v have one (the others end in tanh, which fixes [-1, 1])", c.OutputRange, RangeArchs)
	}
	if c.OutputRange != nil {
		if err := ValidateOutputRange(c.OutputRange); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	_, err := c.Arch()
	return err
}

// Info is model.json.
type Info struct {
	FormatVersion int    `json:"format_version"`
	Kind          string `json:"kind"`
	LatentDim     int    `json:"latent_dim"`
	Height        int    `json:"height"`
	Width         int    `json:"width"`
	Channels      int    `json:"channels"`
	Dataset       string `json:"dataset"`
	Config        Config `json:"config"`
	Step          int    `json:"step"`           // training steps behind the weights
	WeightsSHA256 string `json:"weights_sha256"` // of WeightsFile
	// DiscriminatorSHA256 is the sha256 of DiscriminatorFile, for a GAN
	// trained here; empty when the model ships no discriminator.
	DiscriminatorSHA256 string     `json:"discriminator_sha256,omitempty"`
	Command             string     `json:"command,omitempty"`
	Source              *Source    `json:"source,omitempty"` // set when the weights were imported, not trained here
	Prior               *PriorInfo `json:"prior,omitempty"`  // VAE: the fitted latent prior seeds are drawn through (none: N(0, I))
}

// Source records where imported weights came from, so a model directory can
// be traced back to the exact file it was converted from.
type Source struct {
	File   string `json:"file"`   // base name of the imported file
	SHA256 string `json:"sha256"` // of the whole imported file
	Format string `json:"format"` // "safetensors", "pt" or "onnx" (kept as ONNXFile, checked at every load)
	Arch   string `json:"arch"`   // the layout it was read as (dcgan, sn_resnet32, …, onnx)
}

// OpenData opens the dataset the model was trained on, at the model's size
// and from its folder for the folder dataset: the one way code that compares
// a model with its data reaches that data. o's Size and Dir are set here.
func (i Info) OpenData(o dataset.Options) (dataset.Dataset, error) {
	o.Size, o.Dir = i.Height, i.Config.DataDir
	return dataset.Open(i.Dataset, o)
}

// ReadInfo reads and validates dir/model.json.
func ReadInfo(dir string) (Info, error) {
	path := filepath.Join(dir, InfoFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return Info{}, fmt.Errorf("model %s: %w", dir, err)
	}
	var in Info
	if err := json.Unmarshal(raw, &in); err != nil {
		return Info{}, fmt.Errorf("model %s: %s: %w", dir, path, err)
	}
	bad := func(field string, format string, args ...any) error {
		return fmt.Errorf("model %s: %s: field %s: %s", dir, path, field, fmt.Sprintf(format, args...))
	}
	if err := artifact.CheckVersion(path, in.FormatVersion, FormatVersion); err != nil {
		return in, fmt.Errorf("model %s: %w", dir, err)
	}
	if err := artifact.CheckKind(path, in.Kind, "gan", "vae"); err != nil {
		return in, fmt.Errorf("model %s: %w", dir, err)
	}
	switch {
	case in.LatentDim != in.Config.Latent:
		return in, bad("latent_dim", "%d disagrees with config.latent_dim %d", in.LatentDim, in.Config.Latent)
	case in.Height != in.Config.Size || in.Width != in.Config.Size || in.Channels != in.Config.Channels:
		return in, bad("height/width/channels", "%dx%dx%d disagree with config (size %d, channels %d)", in.Height, in.Width, in.Channels, in.Config.Size, in.Config.Channels)
	case len(in.WeightsSHA256) != 64:
		return in, bad("weights_sha256", "%q is not a sha256", in.WeightsSHA256)
	}
	if err := in.Config.Validate(); err != nil {
		return in, bad("config", "%v", err)
	}
	return in, nil
}

// Latents returns n standard-normal latent vectors of dimension d, the same
// for the same seed: seed s, latent i is the i-th of the stream, so the
// gallery, the report and the command line all agree on "seed 3".
func Latents(seed int64, n, d int) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		out[i] = Latent(seed+int64(i), d)
	}
	return out
}

// Latent is the latent vector of one seed.
func Latent(seed int64, d int) []float32 {
	z := make([]float32, d)
	drawLatent(nil, seedStream(seed), z)
	return z
}

// seedStream is the random stream of one seed's latent.
func seedStream(seed int64) *rand.Rand { return rand.New(rand.NewPCG(uint64(seed), 0x1a7e17)) }

// WriteModel writes the sampling weights vals (names under /generator, and
// /encoder for a VAE) to dir/WeightsFile, then model.json with their
// checksum: model.json comes last, so a reader never sees a model.json
// pointing at weights that are not there. Both files are written
// atomically. The trainer's checkpoints and imports share this one path.
func WriteModel(dir string, info Info, vals map[string]*tensors.Tensor, meta map[string]string) error {
	wpath := filepath.Join(dir, WeightsFile)
	if err := os.MkdirAll(filepath.Dir(wpath), 0o755); err != nil {
		return err
	}
	if err := engine.SaveTensors(wpath, vals, meta); err != nil {
		return err
	}
	sum, err := artifact.FileSHA256(wpath)
	if err != nil {
		return err
	}
	info.FormatVersion, info.WeightsSHA256 = FormatVersion, sum
	return writeInfo(dir, info)
}

// writeInfo writes dir/model.json atomically.
func writeInfo(dir string, info Info) error {
	raw, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, InfoFile), append(raw, '\n'), atomicfile.DefaultPerm)
}
