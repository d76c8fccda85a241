package generator

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
)

// The latent spaces an editor can move in. Z is every generator's input; a
// style-based generator (style, stylegan2) also has W, the output of its
// mapping network, and W+, one w per style layer. Editing in W is what the
// peers' users ask for first: W is less entangled than Z (Karras et al.
// 2019), and W+ is where real images invert best.
const (
	SpaceZ     = "z"
	SpaceW     = "w"
	SpaceWPlus = "w+"
)

// ParseSpace reads a --space value ("" is z).
func ParseSpace(s string) (string, error) {
	switch strings.ToLower(s) {
	case "", SpaceZ:
		return SpaceZ, nil
	case SpaceW:
		return SpaceW, nil
	case SpaceWPlus, "wplus", "w_plus":
		return SpaceWPlus, nil
	}
	return "", fmt.Errorf("space %q: want z, w or w+", s)
}

// FrameLatents is how many seeded latents (seeds 0…4095, the stylegan2
// import's mean_latent count) measure a W frame's centre and scale.
const FrameLatents = 4096

// Frame is how codes of a W or W+ view map to styles: w = Centre + Scale·c.
// Centre is the mean of w over FrameLatents seeded latents (after the
// model's truncation, so that a seed lifts to exactly its picture), Scale the
// root-mean-square of w − Centre over them and all dimensions: one scalar,
// so a code's geometry is w's, and every method's step sizes (tuned for
// N(0, I) latents) carry over — a seed's code has about unit spread.
type Frame struct {
	Space  string    `json:"space"`
	Centre []float32 `json:"centre"`
	Scale  float32   `json:"scale"`
	Styles int       `json:"styles"` // style layers (W+ codes hold one w each)
}

// Space is the latent space the model's latents live in: z for a loaded
// model, w or w+ for a view made by InSpace.
func (m *Model) Space() string {
	if m.frame == nil {
		return SpaceZ
	}
	return m.frame.Space
}

// Frame is the view's code frame (nil in z).
func (m *Model) Frame() *Frame { return m.frame }

// Spaces lists the spaces the model has.
func (m *Model) Spaces() []string {
	if m.hasW() {
		return []string{SpaceZ, SpaceW, SpaceWPlus}
	}
	return []string{SpaceZ}
}

func (m *Model) hasW() bool {
	k := m.Arch.Kind
	return k == ArchStyle || k == ArchStyleGAN2
}

// Root is the model a view was made from (the model itself in z).
func (m *Model) Root() *Model {
	if m.root != nil {
		return m.root
	}
	return m
}

// InSpace returns the model seen in space s: in z the model itself; in w a
// model whose latent is a code c of dimension Latent, drawn as
// Synthesis(broadcast(Centre + Scale·c)); in w+ codes of Styles×Latent, one
// per style layer. The view shares the weights; its seeds are lifted (seed
// s's code draws the picture seed s draws in z), so galleries, reports and
// fits agree across spaces. A model without a mapping network has no w: the
// error names the arch.
func (m *Model) InSpace(s string) (*Model, error) {
	s, err := ParseSpace(s)
	if err != nil {
		return nil, err
	}
	root := m.Root()
	if s == SpaceZ {
		return root, nil
	}
	if !root.hasW() {
		return nil, fmt.Errorf("model %s: arch %s has no mapping network, so no space %s (only style and stylegan2 generators have w and w+)", root.Dir, root.Info.Config.ArchName(), s)
	}
	root.frameOnce.Do(func() { root.wFrame, root.frameErr = root.measureFrame() })
	if root.frameErr != nil {
		return nil, root.frameErr
	}
	f := *root.wFrame
	f.Space = s
	info := root.Info
	if s == SpaceWPlus {
		info.LatentDim = f.Styles * root.Info.LatentDim
	}
	return &Model{Dir: root.Dir, Info: info, Arch: root.Arch, backend: root.backend, ctx: root.ctx, frame: &f, root: root}, nil
}

// seededW maps the seeded latents 0…FrameLatents−1 to w, flat
// [FrameLatents, Latent], after the model's truncation when truncated.
func (m *Model) seededW(truncated bool) ([]float32, error) {
	m = m.Root()
	d := m.Info.LatentDim
	z := make([]float32, 0, FrameLatents*d)
	for i := 0; i < FrameLatents; i++ {
		z = append(z, Latent(int64(i), d)...)
	}
	if !truncated {
		return m.MapFloats(z, FrameLatents)
	}
	return m.mapTruncated(z, FrameLatents)
}

// columnMeans is the mean of each of d columns of flat rows.
func columnMeans(w []float32, d int) []float64 {
	mean := make([]float64, d)
	for i, v := range w {
		mean[i%d] += float64(v)
	}
	for i := range mean {
		mean[i] /= float64(len(w) / d)
	}
	return mean
}

// MeanW is the mean w of the seeded latents 0…FrameLatents−1 (before
// truncation): an imported stylegan2's w_avg (rosinality's generate.py
// averages as many), as w frames centre on the truncated one.
func (m *Model) MeanW() ([]float32, error) {
	w, err := m.seededW(false)
	if err != nil {
		return nil, err
	}
	mean := columnMeans(w, m.Root().Info.LatentDim)
	out := make([]float32, len(mean))
	for i, v := range mean {
		out[i] = float32(v)
	}
	return out, nil
}

// measureFrame computes the W frame from FrameLatents seeded latents.
func (m *Model) measureFrame() (*Frame, error) {
	d := m.Info.LatentDim
	w, err := m.seededW(true)
	if err != nil {
		return nil, fmt.Errorf("model %s: measuring the w frame: %w", m.Dir, err)
	}
	centre := columnMeans(w, d)
	ss := 0.0
	for i, v := range w {
		x := float64(v) - centre[i%d]
		ss += x * x
	}
	scale := math.Sqrt(ss / float64(len(w)))
	if !(scale > 0) || math.IsInf(scale, 0) {
		return nil, fmt.Errorf("model %s: w's spread over %d seeded latents is %g: the mapping network is degenerate", m.Dir, FrameLatents, scale)
	}
	f := &Frame{Centre: make([]float32, d), Scale: float32(scale), Styles: m.Arch.Styles()}
	for i, v := range centre {
		f.Centre[i] = float32(v)
	}
	return f, nil
}

// mapTruncated maps n latents z (flat) to w after the model's truncation,
// as Generate does before its synthesis: one executable, kept by the root
// model, for the frame's measurement and every lift.
func (m *Model) mapTruncated(z []float32, n int) ([]float32, error) {
	root := m.Root()
	exec, err := root.lift.Get(func() (*context.Exec, error) {
		return context.NewExec(root.backend, root.ctx, func(ctx *context.Context, z *graph.Node) *graph.Node {
			ctx = ctx.InAbsPath("/generator").Reuse()
			return truncate(ctx, root.Arch.Mapping(ctx, z), root.Arch.Truncation)
		})
	})
	if err != nil {
		return nil, err
	}
	out, err := engine.RunChunks("map", exec, z, n, []int{root.Info.LatentDim}, 64, false)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// buildCodes is the view's generator: codes c [B, LatentDim] → images.
func (m *Model) buildCodes(ctx *context.Context, c *graph.Node) *graph.Node {
	f, l := m.frame, m.Arch.Latent
	b := c.Shape().Dimensions[0]
	centre := graph.Const(c.Graph(), f.Centre)
	var ws *graph.Node
	if f.Space == SpaceW {
		w := graph.Add(graph.ExpandAxes(centre, 0), graph.MulScalar(c, float64(f.Scale)))
		ws = m.Arch.broadcastStyles(w)
	} else {
		cs := graph.Reshape(c, b, f.Styles, l)
		ws = graph.Add(graph.ExpandAxes(centre, 0, 1), graph.MulScalar(cs, float64(f.Scale)))
	}
	return m.Arch.Synthesis(ctx.InAbsPath("/generator").Reuse(), ws, false)
}

// Lift maps z-space latents (n rows of the root's latent dimension) to the
// view's codes: c = (w − Centre)/Scale, repeated per style in w+.
func (m *Model) Lift(zs [][]float32) ([][]float32, error) {
	if m.frame == nil {
		return zs, nil
	}
	root := m.Root()
	d := root.Info.LatentDim
	flat, err := flatLatents("lift", zs, d)
	if err != nil {
		return nil, err
	}
	w, err := m.mapTruncated(flat, len(zs))
	if err != nil {
		return nil, err
	}
	f := m.frame
	reps := 1
	if f.Space == SpaceWPlus {
		reps = f.Styles
	}
	codes := make([][]float32, len(zs))
	for i := range codes {
		c := make([]float32, 0, reps*d)
		for r := 0; r < reps; r++ {
			for j := 0; j < d; j++ {
				c = append(c, (w[i*d+j]-f.Centre[j])/f.Scale)
			}
		}
		codes[i] = c
	}
	return codes, nil
}

// liftOne lifts one root latent, for the seed and draw paths.
func (m *Model) liftOne(z []float32) []float32 {
	c, err := m.Lift([][]float32{z})
	if err != nil {
		// The mapping ran when the frame was measured; failing now is a
		// broken invariant, not bad input.
		panic(fmt.Sprintf("generator: lifting a latent into %s: %v", m.Space(), err))
	}
	return c[0]
}

// styleAffines are the (scope, style index) of every affine layer that turns
// a style into modulation scales: SeFa factorises their weights in w.
func (a Arch) styleAffines() []styleAffine {
	var out []styleAffine
	if a.Kind == ArchStyleGAN2 {
		out = append(out, styleAffine{"conv0/affine", 0}, styleAffine{"rgb0/affine", 1})
		for r := 1; r <= a.Ups; r++ {
			out = append(out, styleAffine{fmt.Sprintf("conv%d/affine", 2*r-1), 2*r - 1}, styleAffine{fmt.Sprintf("conv%d/affine", 2*r), 2 * r},
				styleAffine{fmt.Sprintf("rgb%d/affine", r), 2*r + 1})
		}
		return out
	}
	for i := 0; i <= a.Ups; i++ {
		out = append(out, styleAffine{fmt.Sprintf("block%d/conv/affine", i), i}, styleAffine{fmt.Sprintf("block%d/to_rgb/affine", i), i})
	}
	return out
}

type styleAffine struct {
	scope string
	style int
}

// styleWeights is SeFa's matrix for a view (rows: the code's dimensions):
// in w every affine's weights side by side (their modulations all read the
// same w), in w+ block-diagonal (style layer i's rows feed only its own
// layers). Each is scaled by the frame's Scale, the code's step in w.
func (m *Model) styleWeights() ([][]float32, error) {
	f, l := m.frame, m.Arch.Latent
	type block struct {
		style int
		w     []float32 // [l, cols]
		cols  int
	}
	var blocks []block
	total := 0
	for _, a := range m.Arch.styleAffines() {
		v := m.ctx.GetVariableByScopeAndName("/generator/"+a.scope, "weights")
		if v == nil {
			return nil, fmt.Errorf("model %s: no style affine weights /generator/%s/weights", m.Dir, a.scope)
		}
		t := v.MustValue()
		dims := t.Shape().Dimensions
		if len(dims) != 2 || dims[0] != l {
			return nil, fmt.Errorf("model %s: /generator/%s/weights has shape %v, want [%d, F]", m.Dir, a.scope, dims, l)
		}
		blocks = append(blocks, block{a.style, tensors.MustCopyFlatData[float32](t), dims[1]})
		total += dims[1]
	}
	rows := l
	if f.Space == SpaceWPlus {
		rows = f.Styles * l
	}
	out := make([][]float32, rows)
	for i := range out {
		out[i] = make([]float32, total)
	}
	col := 0
	for _, b := range blocks {
		off := 0
		if f.Space == SpaceWPlus {
			off = b.style * l
		}
		for i := 0; i < l; i++ {
			for j := 0; j < b.cols; j++ {
				out[off+i][col+j] = f.Scale * b.w[i*b.cols+j]
			}
		}
		col += b.cols
	}
	return out, nil
}

// viewState is what a root model keeps for its views.
type viewState struct {
	frameOnce sync.Once
	wFrame    *Frame
	frameErr  error
	lift      engine.LazyExec
}

// drawCode draws a root latent from r and lifts it: a view's DrawLatent.
func (m *Model) drawCode(r *rand.Rand, c []float32) {
	z := make([]float32, m.Root().Info.LatentDim)
	drawLatent(m.Root().prior, r, z)
	copy(c, m.liftOne(z))
}
