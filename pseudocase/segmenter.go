package pseudocase

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/dataset"
	"latentedit/dataset/fundus"
	"latentedit/engine"
	"latentedit/internal/artifact"
	"latentedit/internal/figure"
	"latentedit/train"
)

// Segmenter output channels.
const (
	ChanVessels = iota // vessel tree (fundus vessel mask)
	ChanLesions        // any lesion (fundus lesion mask)
	ChanDisc           // optic disc (ellipse from fundus.Params)
	numChannels
)

// Files of a saved segmenter.
const (
	SegmenterSpec    = "segmenter.json"
	SegmenterWeights = "segmenter.ckpt"
	SegmenterRun     = "segmenter-run" // its training state and curves, beside the files
	segScope         = "/segmenter"
	// segFormat 2: kind and weights_sha256 in segmenter.json; 3: the
	// network's depth (levels, blocks) and the training recipe.
	segFormat = 3
)

// Segmenter is a small U-Net that reads three masks off a 64×64 fundus
// image: vessels, lesions and the optic disc. It is trained on rendered
// images, whose masks are exact, and then applied to generated ones, whose
// structure nobody labelled: that is how an edit's effect on the vessels
// and the disc is measured.
type Segmenter struct {
	Format        int    `json:"format_version"`
	Kind          string `json:"kind"`           // "segmenter"
	WeightsSHA256 string `json:"weights_sha256"` // of segmenter.ckpt
	Size          int    `json:"size"`
	// Width, Levels and Blocks shape the network (see net).
	Width  int `json:"width"`
	Levels int `json:"levels"`
	Blocks int `json:"blocks"`
	Steps  int `json:"steps"`
	// Recipe is how it was trained (Steps included).
	Recipe SegmenterRecipe `json:"recipe"`
	// Dice is the held-out Dice per channel (vessels, lesions, disc) on
	// rendered images of another seed, thresholded at 0.5.
	Dice map[string]float64 `json:"held_out_dice"`
	// DiscErrPx is the held-out mean distance in pixels between the located
	// disc centre and fundus.Params.Disc; nil (null) when the segmenter
	// found no disc in any held-out image.
	DiscErrPx *float64 `json:"held_out_disc_error_px"`
	// NotOneDisc is the fraction of held-out images in which it counts a
	// number of optic discs other than one (Structure.DiscCount).
	NotOneDisc float64 `json:"held_out_not_one_disc"`

	// History is the training loss of every step of the run that made it
	// (not saved).
	History *figure.Curves `json:"-"`

	ctx  *context.Context
	be   backends.Backend
	exec engine.LazyExec
	keep engine.LazyExec // KeepLoss's loss and pixel gradient
}

// SegmenterRecipe is everything a training run's result depends on: a
// resumed run must have the same (Steps may grow when the schedule does not
// depend on the run's length).
type SegmenterRecipe struct {
	N        int            `json:"n"`
	Steps    int            `json:"steps"`
	Batch    int            `json:"batch"`
	Width    int            `json:"width"`
	Levels   int            `json:"levels"`
	Blocks   int            `json:"blocks"`
	Loss     string         `json:"loss"`
	LR       float64        `json:"lr"`
	Schedule train.Schedule `json:"schedule"`
	Seed     int64          `json:"seed"`
}

// channelNames name the output channels in JSON and reports.
var channelNames = [numChannels]string{"vessels", "lesions", "disc"}

// SegmenterOptions configure TrainSegmenter. Zero fields take defaults.
type SegmenterOptions struct {
	N     int   // rendered training images (default 2000)
	Held  int   // held-out images (default 200)
	Steps int   // Adam steps; 0 trains nothing (the command's default is 2200)
	Batch int   // default 16
	Width int   // channels of the first level (default 16)
	Seed  int64 // data seed; the held-out set uses Seed+1
	// Levels is the number of stride-2 levels below full resolution
	// (default 2: the disc and lesions get 16×16 context); Blocks the 3×3
	// convolutions per block (default 2; the first segmenter had 1).
	Levels, Blocks int
	// Loss is LossBCEDice (default) or LossBCE.
	Loss     string
	LR       float64
	Schedule train.Schedule
	// Dir is the run directory: training state and curves for --resume
	// ("" keeps none). The trained segmenter is saved apart, by Save.
	Dir    string
	Resume bool
	Log    io.Writer
	JSON   bool
}

// Segmenter losses.
const (
	// LossBCE is binary cross-entropy with positive pixels weighted up
	// (vessels and disc ×4, lesions ×2).
	LossBCE = "bce"
	// LossBCEDice adds to it 1 − soft Dice of each channel over the batch,
	// averaged over the channels: the usual answer to thin classes, whose
	// few positive pixels weigh little in a mean over all pixels.
	LossBCEDice = "bce+dice"
)

func (o *SegmenterOptions) defaults() error {
	// The defaults are variant D of docs/pseudocases.md, the best of the
	// equal-step comparison.
	o.N, o.Held, o.Batch, o.Width, o.LR = cmp.Or(o.N, 2000), cmp.Or(o.Held, 200), cmp.Or(o.Batch, 16), cmp.Or(o.Width, 16), cmp.Or(o.LR, 2e-3)
	o.Levels, o.Blocks, o.Loss = cmp.Or(o.Levels, 2), cmp.Or(o.Blocks, 2), cmp.Or(o.Loss, LossBCEDice)
	if o.N < 1 || o.Held < 1 || o.Steps < 0 || o.Batch < 1 || o.Width < 1 || !(o.LR > 0) {
		return fmt.Errorf("segmenter: bad options N %d, Held %d, Steps %d, Batch %d, Width %d, LR %g", o.N, o.Held, o.Steps, o.Batch, o.Width, o.LR)
	}
	if err := checkShape(o.Width, o.Levels, o.Blocks); err != nil {
		return fmt.Errorf("segmenter: %w", err)
	}
	if o.Loss != LossBCE && o.Loss != LossBCEDice {
		return fmt.Errorf("segmenter: loss %q (%s or %s)", o.Loss, LossBCE, LossBCEDice)
	}
	return o.Schedule.Validate()
}

// checkShape bounds the network's shape fields (64×64 input: at most four
// halvings leave 4×4).
func checkShape(width, levels, blocks int) error {
	switch {
	case width < 1 || width > 256:
		return fmt.Errorf("width %d out of [1, 256]", width)
	case levels < 1 || levels > 4:
		return fmt.Errorf("levels %d out of [1, 4]", levels)
	case blocks < 1 || blocks > 3:
		return fmt.Errorf("blocks %d out of [1, 3]", blocks)
	}
	return nil
}

func (o *SegmenterOptions) recipe() SegmenterRecipe {
	return SegmenterRecipe{N: o.N, Steps: o.Steps, Batch: o.Batch, Width: o.Width, Levels: o.Levels, Blocks: o.Blocks,
		Loss: o.Loss, LR: o.LR, Schedule: o.Schedule, Seed: o.Seed}
}

// sameRecipe reports the fields in which a resumed run's recipe differs
// from the stored one. Steps may grow, unless the schedule's rates depend
// on the run's length.
func sameRecipe(stored, now SegmenterRecipe) []string {
	var diff []string
	if stored.Steps != now.Steps && (now.Steps < stored.Steps || stored.Schedule.Kind == "step" || stored.Schedule.Kind == "cosine") {
		diff = append(diff, fmt.Sprintf("steps %d (stored run %d)", now.Steps, stored.Steps))
	}
	stored.Steps, now.Steps = 0, 0
	sv, nv := reflect.ValueOf(stored), reflect.ValueOf(now)
	for i := range sv.NumField() {
		if !reflect.DeepEqual(sv.Field(i).Interface(), nv.Field(i).Interface()) {
			tag, _, _ := strings.Cut(sv.Type().Field(i).Tag.Get("json"), ",")
			diff = append(diff, fmt.Sprintf("%s %v (stored run %v)", tag, nv.Field(i).Interface(), sv.Field(i).Interface()))
		}
	}
	return diff
}

// net is the segmenter: a U-Net with 3×3 convolutions only (odd kernels:
// GOMLX-NOTES trap 1), nearest upsampling and skip connections, so thin
// vessels keep full resolution while the disc and lesions get context.
// Level 0 is Blocks convolutions of Width channels at full resolution;
// each of the Levels levels below halves the size with a stride-2
// convolution and doubles the channels, then adds Blocks convolutions; the
// decoder goes back up with Blocks convolutions per level on the upsampled
// features beside the encoder's. Levels 2, Blocks 1 is the first
// segmenter's network. It returns logits [B, S, S, 3].
func (s *Segmenter) net(ctx *context.Context, x *graph.Node) *graph.Node {
	lrelu := func(x *graph.Node) *graph.Node { return graph.Max(x, graph.MulScalar(x, 0.2)) }
	conv := func(name string, x *graph.Node, f, stride int) *graph.Node {
		return lrelu(engine.Conv(ctx.In(name), x).Filters(f).Kernel(3).Stride(stride).Pad(1).Done())
	}
	block := func(name string, x *graph.Node, f int) *graph.Node {
		for b := range s.Blocks {
			x = conv(fmt.Sprintf("%s_%d", name, b), x, f, 1)
		}
		return x
	}
	skips := []*graph.Node{block("e0", x, s.Width)} // [B, S, S, w]
	for l := 1; l <= s.Levels; l++ {
		f := s.Width << l
		skips = append(skips, block(fmt.Sprintf("e%d", l), conv(fmt.Sprintf("e%d_down", l), skips[l-1], f, 2), f)) // [B, S/2^l, S/2^l, 2^l·w]
	}
	u := skips[s.Levels]
	for l := s.Levels - 1; l >= 0; l-- {
		u = block(fmt.Sprintf("u%d", l), graph.Concatenate([]*graph.Node{engine.Upsample2x(u), skips[l]}, -1), s.Width<<l)
	}
	return engine.Conv(ctx.In("out"), u).Filters(numChannels).Kernel(1).Pad(0).Done() // [B, S, S, 3]
}

// renderSet renders n fundus images of seed with their three target masks
// (flat [n, S, S, 3] in {0,1}) and the disc centres in pixels.
func renderSet(n, size int, seed int64) (pix, masks []float32, discs [][2]float64, err error) {
	ds, err := fundus.New(dataset.Options{N: n, Seed: seed, Size: size})
	if err != nil {
		return nil, nil, nil, err
	}
	sz := size * size
	pix = make([]float32, n*sz*3)
	masks = make([]float32, n*sz*numChannels)
	discs = make([][2]float64, n)
	for i := 0; i < n; i++ {
		p, err := ds.Params(i)
		if err != nil {
			return nil, nil, nil, err
		}
		img, ves, les := fundus.Render(p, size)
		dataset.ToFloats(img, 3, pix[i*sz*3:(i+1)*sz*3])
		disc := DiscMask(p, size)
		m := masks[i*sz*numChannels : (i+1)*sz*numChannels]
		for j := 0; j < sz; j++ {
			m[j*numChannels+ChanVessels] = bit(ves.Pix[j] > 0)
			m[j*numChannels+ChanLesions] = bit(les.Pix[j] > 0)
			m[j*numChannels+ChanDisc] = float32(disc[j])
		}
		discs[i] = [2]float64{p.Disc.X * float64(size), p.Disc.Y * float64(size)}
	}
	return pix, masks, discs, nil
}

// DiscMask is the ground-truth optic disc of p at size×size (1 inside):
// the ellipse the renderer draws (radii DiscRadius and 1.08·DiscRadius)
// tested at pixel centres. The locator learns it; its centre is p.Disc.
func DiscMask(p fundus.Params, size int) []uint8 {
	m := make([]uint8, size*size)
	r := p.DiscRadius
	if r <= 0 {
		r = fundus.DefaultParams().DiscRadius
	}
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			dx := ((float64(x)+0.5)/float64(size) - p.Disc.X) / r
			dy := ((float64(y)+0.5)/float64(size) - p.Disc.Y) / (1.08 * r)
			if dx*dx+dy*dy <= 1 {
				m[y*size+x] = 1
			}
		}
	}
	return m
}

// augment makes rendered images look a little more like a GAN's: a random
// 3×3 box blur (generated vessels are softer) and pixel noise, so the
// segmenter does not rely on the renderer's crisp edges.
func augment(r *rand.Rand, img []float32, size int) {
	if r.IntN(2) == 0 {
		src := append([]float32(nil), img...)
		for y := 0; y < size; y++ {
			for x := 0; x < size; x++ {
				for c := 0; c < 3; c++ {
					var s float32
					var k float32
					for dy := -1; dy <= 1; dy++ {
						for dx := -1; dx <= 1; dx++ {
							yy, xx := y+dy, x+dx
							if yy < 0 || yy >= size || xx < 0 || xx >= size {
								continue
							}
							s += src[(yy*size+xx)*3+c]
							k++
						}
					}
					img[(y*size+x)*3+c] = s / k
				}
			}
		}
	}
	sigma := float32(0.04 * r.Float64())
	for i := range img {
		img[i] += sigma * float32(r.NormFloat64())
	}
}

// TrainSegmenter trains a segmenter on rendered 64×64 fundus images and
// measures its Dice on held-out ones.
func TrainSegmenter(be backends.Backend, opt SegmenterOptions) (*Segmenter, error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	const size = fundus.DefaultSize
	rec := opt.recipe()
	recJSON, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if opt.Resume && opt.Dir != "" {
		if err := checkResume(filepath.Join(opt.Dir, train.StateFile), rec); err != nil {
			return nil, err
		}
	}
	s := &Segmenter{Format: segFormat, Size: size, Width: opt.Width, Levels: opt.Levels, Blocks: opt.Blocks, Steps: opt.Steps,
		Recipe: rec, ctx: context.New().Checked(false), be: be}
	pix, masks, _, err := renderSet(opt.N, size, opt.Seed)
	if err != nil {
		return nil, err
	}
	if err := s.ctx.SetRNGStateFromSeed(opt.Seed + 17); err != nil {
		return nil, err
	}
	// Vessels cover about a tenth of the field: their positive pixels are
	// weighted up so the net does not settle on "no vessel anywhere".
	posWeight := [numChannels]float32{4, 2, 4}
	step, err := context.NewExec(be, s.ctx, func(ctx *context.Context, x, y *graph.Node) *graph.Node {
		logits := s.net(ctx.In("segmenter"), x)
		// Numerically stable weighted BCE: (1-y)·l + (1+(w-1)y)·softplus(-l).
		wpos := graph.Const(x.Graph(), posWeight[:])
		wy := graph.OnePlus(graph.Mul(graph.AddScalar(graph.ExpandLeftToRank(wpos, 4), -1), y))
		sp := graph.Log1P(graph.Exp(graph.Neg(graph.Abs(logits))))
		softplusNeg := graph.Add(sp, graph.Max(graph.Neg(logits), graph.ZerosLike(logits)))
		loss := graph.ReduceAllMean(graph.Add(graph.Mul(graph.OneMinus(y), logits), graph.Mul(wy, softplusNeg)))
		if opt.Loss == LossBCEDice {
			// 1 − soft Dice per channel over the whole batch, (2Σpy + 1)/(Σp + Σy + 1).
			p := graph.Sigmoid(logits)
			inter := graph.ReduceSum(graph.Mul(p, y), 0, 1, 2)
			total := graph.Add(graph.ReduceSum(p, 0, 1, 2), graph.ReduceSum(y, 0, 1, 2))
			dice := graph.Div(graph.AddScalar(graph.MulScalar(inter, 2), 1), graph.AddScalar(total, 1))
			loss = graph.Add(loss, graph.OneMinus(graph.ReduceAllMean(dice)))
		}
		engine.Adam{Name: "segmenter", LR: opt.LR, Scale: train.LRScale(ctx, x.Graph())}.Minimize(ctx, loss, engine.Variables(ctx, segScope))
		return loss
	})
	if err != nil {
		return nil, err
	}
	isz, msz := size*size*3, size*size*numChannels
	xb := make([]float32, opt.Batch*isz)
	yb := make([]float32, opt.Batch*msz)
	loop := &train.Loop{
		Name: "segmenter", Dir: opt.Dir, Ctx: s.ctx, Scopes: []string{segScope, "/optim/segmenter"},
		Meta: map[string]string{"recipe": string(recJSON)},
		Keys: []string{"loss"}, Steps: opt.Steps, CheckpointEvery: max(1, opt.Steps/20), Schedule: opt.Schedule,
		Resume: opt.Resume, Log: opt.Log, JSON: opt.JSON,
		Step: func(st int) ([]float64, error) {
			// Batch and augmentation of step st are a function of (seed, st):
			// a resumed run draws the same.
			r := rand.New(rand.NewPCG(uint64(opt.Seed), 0x5e6<<32|uint64(st)))
			for j := 0; j < opt.Batch; j++ {
				i := r.IntN(opt.N)
				copy(xb[j*isz:(j+1)*isz], pix[i*isz:(i+1)*isz])
				augment(r, xb[j*isz:(j+1)*isz], size)
				copy(yb[j*msz:(j+1)*msz], masks[i*msz:(i+1)*msz])
			}
			var loss float64
			err := engine.Safe("segmenter step", func() error {
				out, err := step.Exec(tensors.FromFlatDataAndDimensions(xb, opt.Batch, size, size, 3),
					tensors.FromFlatDataAndDimensions(yb, opt.Batch, size, size, numChannels))
				if err != nil {
					return err
				}
				loss = float64(tensors.ToScalar[float32](out[0]))
				return nil
			})
			return []float64{loss}, err
		},
		Plot: &train.Plot{Title: "segmenter", Keys: []string{"loss"}},
	}
	run, err := loop.Run()
	if err != nil {
		return nil, err
	}
	s.History = run.Curves
	return s, s.measure(opt.Held, opt.Seed+1)
}

// checkResume refuses to resume the run whose state is at path with
// another recipe than rec.
func checkResume(path string, rec SegmenterRecipe) error {
	_, meta, err := train.ReadState(path)
	if err != nil {
		return fmt.Errorf("segmenter --resume: %w", err)
	}
	var stored SegmenterRecipe
	if err := json.Unmarshal([]byte(meta["recipe"]), &stored); err != nil {
		return fmt.Errorf("segmenter --resume: %s: recipe %q: %v (a run of an older build? start it again without --resume)", path, meta["recipe"], err)
	}
	if diff := sameRecipe(stored, rec); len(diff) > 0 {
		return fmt.Errorf("segmenter --resume: %s was trained with another recipe: %s", path, strings.Join(diff, "; "))
	}
	return nil
}

// SegmenterScores is a segmenter measured on rendered images with exact
// masks.
type SegmenterScores struct {
	N    int   `json:"n"`
	Seed int64 `json:"seed"`
	// Dice per channel, thresholded at one half, over all pixels of all
	// images.
	Dice map[string]float64 `json:"dice"`
	// DiscErrPx is the mean distance between the located and the true disc
	// centre in the images where a disc was found (nil when none was).
	DiscErrPx *float64 `json:"disc_error_px"`
	// NotOneDisc is the fraction of images with DiscCount ≠ 1.
	NotOneDisc float64 `json:"not_one_disc"`
	// DiscCounts are the images with 0, 1, 2 and ≥ 3 discs.
	DiscCounts [4]int `json:"disc_counts"`
}

// Measure scores s on n fundus renders of seed: sample i of the fundus
// dataset of that seed, so seed 777 gives the first real set of
// `evaluate --quality`.
func (s *Segmenter) Measure(n int, seed int64) (*SegmenterScores, error) {
	pix, masks, discs, err := renderSet(n, s.Size, seed)
	if err != nil {
		return nil, err
	}
	pred, err := s.Predict(pix, n)
	if err != nil {
		return nil, err
	}
	sz := s.Size * s.Size
	sc := &SegmenterScores{N: n, Seed: seed, Dice: map[string]float64{}}
	var inter, sum [numChannels]float64
	var discErr float64
	var found int
	for i := 0; i < n; i++ {
		for c := 0; c < numChannels; c++ {
			for j := 0; j < sz; j++ {
				t := masks[(i*sz+j)*numChannels+c] > 0.5
				p := pred[i].Masks[c][j]
				if t && p {
					inter[c]++
				}
				if t {
					sum[c]++
				}
				if p {
					sum[c]++
				}
			}
		}
		if pred[i].DiscFound {
			discErr += math.Hypot(pred[i].DiscX-discs[i][0], pred[i].DiscY-discs[i][1])
			found++
		}
		sc.DiscCounts[min(pred[i].DiscCount, 3)]++
	}
	for c := 0; c < numChannels; c++ {
		sc.Dice[channelNames[c]] = 2 * inter[c] / math.Max(sum[c], 1)
	}
	if found > 0 {
		e := discErr / float64(found)
		sc.DiscErrPx = &e
	}
	sc.NotOneDisc = 1 - float64(sc.DiscCounts[1])/float64(n)
	return sc, nil
}

// measure sets the held-out scores from n rendered images of seed.
func (s *Segmenter) measure(n int, seed int64) error {
	sc, err := s.Measure(n, seed)
	if err != nil {
		return err
	}
	s.Dice, s.DiscErrPx, s.NotOneDisc = sc.Dice, sc.DiscErrPx, sc.NotOneDisc
	return nil
}

// Structure is what the segmenter reads off one image.
type Structure struct {
	// Masks per channel (vessels, lesions, disc), row-major, true inside.
	Masks [numChannels][]bool
	// DiscX, DiscY: the optic-disc centre in pixels (centroid of the disc
	// probability where it exceeds one half); DiscFound is false when no
	// pixel does.
	DiscX, DiscY float64
	DiscFound    bool
	// DiscCount is the number of separate optic discs: 4-connected
	// components of the disc mask of at least MinDiscArea pixels. A retina
	// has one; a generated image with two (or none) is an artefact.
	DiscCount int
}

// MinDiscArea is the smallest disc component DiscCount counts, in pixels:
// half the smallest disc the renderer draws at 64×64 (radius 4.4 px, 64
// pixels). The first segmenter (200 steps, disc Dice 0.81) left fragments
// on the pale skirt of a detachment: on 500 rendered retinas it counted ≠ 1
// disc in 21% of them when every fragment of 4 pixels or more counted, 8.6%
// at 30 pixels, 6.2% at 40; at this threshold, 7.8% of the 1000 real
// retinas of `evaluate --quality`. The shipped one (2200 steps, disc Dice
// 0.96) counts ≠ 1 disc in 0.7% of them: seven retinas with no disc, each
// under a detachment of extent ≥ 0.7 that covers the disc (0–28 disc pixels
// found). That rate is the judge's own error, the floor under a generator's
// (docs/models.md).
const MinDiscArea = 32

// discCount is Structure.DiscCount of a disc mask.
func discCount(m []bool, size int) int {
	n := 0
	for _, area := range components(m, size) {
		if area >= MinDiscArea {
			n++
		}
	}
	return n
}

// Predict reads the structure of n images (flat [n, S, S, 3] in [-1, 1]).
// Images are run in fixed chunks of predictChunk (the last one padded), so
// an image's result never depends on which others share its batch: that is
// what makes sharded runs byte-identical to whole ones.
func (s *Segmenter) Predict(pix []float32, n int) ([]Structure, error) {
	isz := s.Size * s.Size * 3
	if n < 1 || len(pix) != n*isz {
		return nil, fmt.Errorf("segmenter: %d values for %d images of %dx%dx3", len(pix), n, s.Size, s.Size)
	}
	exec, err := s.exec.Get(func() (*context.Exec, error) {
		return context.NewExec(s.be, s.ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
			return graph.Sigmoid(s.net(ctx.In("segmenter").Reuse(), x))
		})
	})
	if err != nil {
		return nil, err
	}
	res, err := engine.RunChunks("segmenter predict", exec, pix, n, []int{s.Size, s.Size, 3}, predictChunk, true)
	if err != nil {
		return nil, err
	}
	prob := res[0]
	out := make([]Structure, 0, n)
	sz := s.Size * s.Size
	for i := 0; i < n; i++ {
		var o Structure
		var wx, wy, ws float64
		for c := 0; c < numChannels; c++ {
			o.Masks[c] = make([]bool, sz)
		}
		for j := 0; j < sz; j++ {
			for c := 0; c < numChannels; c++ {
				p := prob[(i*sz+j)*numChannels+c]
				o.Masks[c][j] = p > 0.5
				if c == ChanDisc && p > 0.5 {
					wx += float64(p) * (float64(j%s.Size) + 0.5)
					wy += float64(p) * (float64(j/s.Size) + 0.5)
					ws += float64(p)
				}
			}
		}
		if ws > 0 {
			o.DiscX, o.DiscY, o.DiscFound = wx/ws, wy/ws, true
		}
		o.DiscCount = discCount(o.Masks[ChanDisc], s.Size)
		out = append(out, o)
	}
	return out, nil
}

// KeepLoss is how far the segmenter's reading of n images (flat [n, S, S,
// 3] in [-1, 1]) is from reference masks ref (flat [n, S, S, 3] in {0, 1},
// the channels of Predict), weighted per pixel and channel by weight, and
// its gradient with respect to the pixels: per image, the weighted binary
// cross-entropy of the segmenter's logits against ref, divided by the
// weights' sum. With ref the original picture's vessels and disc and
// weight 1 outside the lesion region, an edit that descends it keeps the
// original's structure there (pseudocase's region-constrained refinement).
func (s *Segmenter) KeepLoss(pix []float32, n int, ref, weight []float32) (loss []float64, grad []float32, err error) {
	isz := s.Size * s.Size * 3
	msz := s.Size * s.Size * numChannels
	if n < 1 || len(pix) != n*isz || len(ref) != n*msz || len(weight) != n*msz {
		return nil, nil, fmt.Errorf("segmenter: %d values, %d reference and %d weights for %d images of %dx%dx3", len(pix), len(ref), len(weight), n, s.Size, s.Size)
	}
	exec, err := s.keep.Get(func() (*context.Exec, error) {
		return context.NewExec(s.be, s.ctx, func(ctx *context.Context, x, ref, wt *graph.Node) []*graph.Node {
			logit := s.net(ctx.In("segmenter").Reuse(), x)
			// BCE with logits, stable: max(l, 0) − l·y + log(1 + e^−|l|).
			bce := graph.Add(graph.Sub(graph.Max(logit, graph.ZerosLike(logit)), graph.Mul(logit, ref)),
				graph.Log1P(graph.Exp(graph.Neg(graph.Abs(logit)))))
			den := graph.Max(graph.ReduceSum(wt, 1, 2, 3), graph.OnesLike(graph.ReduceSum(wt, 1, 2, 3)))
			l := graph.Div(graph.ReduceSum(graph.Mul(bce, wt), 1, 2, 3), den) // [B]
			return []*graph.Node{l, graph.Gradient(graph.ReduceAllSum(l), x)[0]}
		})
	})
	if err != nil {
		return nil, nil, err
	}
	return engine.LossGrad("segmenter keep", exec, n, []engine.Rows{{Data: pix, Dims: []int{s.Size, s.Size, 3}},
		{Data: ref, Dims: []int{s.Size, s.Size, numChannels}}, {Data: weight, Dims: []int{s.Size, s.Size, numChannels}}})
}

// predictChunk is the fixed batch of every network call in this package.
const predictChunk = 8

// Save writes the segmenter to dir (segmenter.json + checksummed
// segmenter.ckpt), each file atomically.
func (s *Segmenter) Save(dir string) error {
	return segFiles(dir).Save(s.ctx, segScope, map[string]string{"kind": "segmenter"}, s, func(format int, kind, sha string) {
		s.Format, s.Kind, s.WeightsSHA256 = format, kind, sha
	})
}

func segFiles(dir string) artifact.Files {
	return artifact.Files{Dir: dir, Spec: SegmenterSpec, Weights: SegmenterWeights, Kind: "segmenter", Format: segFormat}
}

// LoadSegmenter reads a segmenter saved by Save. It refuses a spec with
// bad fields, a checkpoint whose checksum fails, and weights that do not
// fit the spec's network.
func LoadSegmenter(dir string, be backends.Backend) (*Segmenter, error) {
	f, s := segFiles(dir), &Segmenter{}
	ctx, meta, err := f.Load(s, func() (int, string, string) { return s.Format, s.Kind, s.WeightsSHA256 })
	if err != nil {
		if s.Format != 0 && s.Format < segFormat {
			return nil, fmt.Errorf("%w: an older build's segmenter (another network); train a new one with `latentedit pseudocase --model … --train-segmenter`", err)
		}
		return nil, err
	}
	switch spec := f.SpecPath(); {
	case s.Size != fundus.DefaultSize:
		return nil, fmt.Errorf("segmenter %s: field size: %d, want %d", spec, s.Size, fundus.DefaultSize)
	case checkShape(s.Width, 1, 1) != nil:
		return nil, fmt.Errorf("segmenter %s: field width: %d out of [1, 256]", spec, s.Width)
	case checkShape(1, s.Levels, 1) != nil:
		return nil, fmt.Errorf("segmenter %s: field levels: %d out of [1, 4]", spec, s.Levels)
	case checkShape(1, 1, s.Blocks) != nil:
		return nil, fmt.Errorf("segmenter %s: field blocks: %d out of [1, 3]", spec, s.Blocks)
	case meta["kind"] != "segmenter":
		return nil, fmt.Errorf("segmenter %s: checkpoint kind %q, want \"segmenter\"", f.WeightsPath(), meta["kind"])
	}
	// The network the spec describes is built in a fresh context, and the
	// file must hold exactly its variables, each of its shape: a loaded
	// context would silently initialise a variable the file lacks, and
	// ignore one the network does not use.
	file := map[string]*tensors.Tensor{}
	for v := range ctx.IterVariables() {
		if engine.InScope(v.Scope(), segScope) {
			t, err := v.Value()
			if err != nil {
				return nil, fmt.Errorf("segmenter %s: variable %s: %w", f.WeightsPath(), v.ScopeAndName(), err)
			}
			file[v.ScopeAndName()] = t
		}
	}
	s.ctx, s.be = context.New().Checked(false), be
	if _, err := s.Predict(make([]float32, s.Size*s.Size*3), 1); err != nil {
		return nil, fmt.Errorf("segmenter %s: weights do not fit the spec: %w", dir, err)
	}
	var problems []string
	for v := range s.ctx.IterVariables() {
		if !engine.InScope(v.Scope(), segScope) {
			continue
		}
		name := v.ScopeAndName()
		t, ok := file[name]
		switch {
		case !ok:
			problems = append(problems, name+" missing")
		case !t.Shape().Equal(v.Shape()):
			problems = append(problems, fmt.Sprintf("%s has shape %s, the network %s", name, t.Shape(), v.Shape()))
		default:
			if err := v.SetValue(t); err != nil {
				return nil, fmt.Errorf("segmenter %s: variable %s: %w", f.WeightsPath(), name, err)
			}
		}
		delete(file, name)
	}
	for name := range file {
		problems = append(problems, name+" not in the network")
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, fmt.Errorf("segmenter %s: weights do not fit the spec (width %d, levels %d, blocks %d): %s", dir, s.Width, s.Levels, s.Blocks, strings.Join(problems, "; "))
	}
	return s, nil
}

func bit(b bool) float32 {
	if b {
		return 1
	}
	return 0
}
