package pseudocase

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/dataset"
	"latentedit/dataset/fundus"
	"latentedit/engine"
	"latentedit/evaluate"
	"latentedit/generator"
	inversion "latentedit/invert"
)

// RegionOptions turn a run into region-constrained editing: each case's
// edit (the editor's steps) is the start of a refinement of the latent by
// Adam on
//
//	Keep · mean over the pixels outside the region of (G(z) − original)²
//	+ Goal · the oracle's normalised error to the request (evaluate.Oracle.Steer),
//	  the lesions not asked for held at the original's reading
//	+ Structure · the segmenter's cross-entropy against the original's vessels
//	  and disc outside the region (Segmenter.KeepLoss)
//	+ Realism · the GAN's own discriminator's loss softplus(−D(G(z)))
//	+ Prior · mean z²
//
// and the best latent seen is kept. The realism term needs a model that
// ships its discriminator (generator.DiscriminatorFile: GANs trained here
// since the trainer saves it); on such a model the discriminator's reading
// is recorded for every case whatever the term's weight, so runs with and
// without the term compare.
type RegionOptions struct {
	Steps                                 int     // Adam steps (0: the editor's step alone)
	LR                                    float64 // Adam's learning rate on the latent
	Keep, Goal, Structure, Realism, Prior float64 // weights of the terms
	Margin                                int     // pixels the region is grown by
	Feather                               float64 // σ in pixels of the composite's soft edge
	Mask                                  []bool  // a user's region (model size), or nil
	MaskPath                              string  // its file, for the record
	SeamRenders                           int     // real renders whose lesion borders are the seam reference
	SeamSeed                              int64   // their seed
}

// DefaultRegionOptions are the weights chosen in docs/pseudocases.md.
func DefaultRegionOptions() RegionOptions {
	return RegionOptions{Steps: 200, LR: 0.05, Keep: 1, Goal: 0.05, Structure: 0.05, Prior: 1e-3,
		Margin: DefaultRegionMargin, Feather: DefaultRegionFeather, SeamRenders: 64, SeamSeed: 9001}
}

// Validate refuses options that cannot make a refinement.
func (o RegionOptions) Validate() error {
	for _, w := range []struct {
		name string
		v    float64
	}{{"lr", o.LR}, {"keep", o.Keep}, {"goal", o.Goal}, {"structure", o.Structure}, {"realism", o.Realism}, {"prior", o.Prior}, {"feather", o.Feather}} {
		if math.IsNaN(w.v) || math.IsInf(w.v, 0) || w.v < 0 {
			return fmt.Errorf("%w: %s %v: want a finite value ≥ 0", ErrRegion, w.name, w.v)
		}
	}
	switch {
	case o.Steps < 0:
		return fmt.Errorf("%w: %d refinement steps", ErrRegion, o.Steps)
	case o.Steps > 0 && o.LR == 0:
		return fmt.Errorf("%w: refinement with learning rate 0", ErrRegion)
	case o.Margin < 0 || o.Margin > 16:
		return fmt.Errorf("%w: margin %d px: want 0 to 16", ErrRegion, o.Margin)
	case o.SeamRenders < 1:
		return fmt.Errorf("%w: %d seam reference renders", ErrRegion, o.SeamRenders)
	}
	return nil
}

// Spec is the options as one line: what a merge checks its shards agree on.
func (o RegionOptions) Spec() string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	s := fmt.Sprintf("steps=%d lr=%s keep=%s goal=%s structure=%s realism=%s prior=%s margin=%d feather=%s seam=%d@%d",
		o.Steps, f(o.LR), f(o.Keep), f(o.Goal), f(o.Structure), f(o.Realism), f(o.Prior), o.Margin, f(o.Feather), o.SeamRenders, o.SeamSeed)
	if o.MaskPath != "" {
		s += " mask=" + o.MaskPath
	}
	return s
}

// refiner holds the compiled pull-back of a pixel gradient through G.
type refiner struct {
	m    *generator.Model
	disc *generator.Discriminator // the model's own D, or nil when it ships none
	exec engine.LazyExec
}

// pullback returns ∂/∂z [Σ G(z)·g + prior · Σ_i mean_j z_ij²] for n
// latents: the chain rule from the judges' pixel gradients to the latent,
// each judge in its own context.
func (r *refiner) pullback(z []float32, n int, g []float32, prior float64) ([]float32, error) {
	m := r.m
	if err := m.Differentiable(); err != nil {
		return nil, err
	}
	h, w, c := m.ImageShape()
	d := m.LatentDim()
	exec, err := r.exec.Get(func() (*context.Exec, error) {
		return context.NewExec(m.Backend(), m.Context(), func(ctx *context.Context, z, g, prior *graph.Node) *graph.Node {
			img := m.Build(ctx, z)
			l := graph.Add(graph.ReduceAllSum(graph.Mul(img, graph.StopGradient(g))),
				graph.Mul(prior, graph.ReduceAllSum(graph.ReduceMean(graph.Square(z), 1))))
			return graph.Gradient(l, z)[0]
		})
	})
	if err != nil {
		return nil, err
	}
	out, err := engine.RunRows("pseudocase refine", exec, n, []engine.Rows{{Data: z, Dims: []int{d}}, {Data: g, Dims: []int{h, w, c}}},
		tensors.FromScalar(float32(prior)))
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// refineResult is a refinement's latents and the keep, goal and realism
// terms of its loss at the start (the editor's step) and at the kept
// latent (realism NaN without a discriminator).
type refineResult struct {
	Z                     [][]float32
	StartKeep, Keep       []float64 // mean squared error outside the region
	StartGoal, Goal       []float64
	StartRealism, Realism []float64
}

// refine runs the refinement of RegionOptions from the latents zs towards
// targets (per case, in the oracle's factor order) on the originals orig
// (flat [n, S, S, 3]) whose structure is st, keeping each case outside its
// region.
func (r *refiner) refine(t Tools, ro RegionOptions, zs [][]float32, orig []float32, st []Structure, regions, free [][]bool, targets [][]float64) (*refineResult, error) {
	m := r.m
	n, d := len(zs), m.LatentDim()
	h, _, c := m.ImageShape()
	sz, px := h*h*c, h*h
	z := make([]float32, 0, n*d)
	for _, v := range zs {
		z = append(z, v...)
	}
	// The segmenter's reference: the original's vessels and disc, weighted
	// outside the part of the region where they may change (free); the
	// lesion channel is free everywhere.
	ref := make([]float32, n*px*numChannels)
	wt := make([]float32, n*px*numChannels)
	outN := make([]float64, n)
	for i := range n {
		for j := 0; j < px; j++ {
			if !regions[i][j] {
				outN[i]++
			}
			if free[i][j] {
				continue
			}
			k := (i*px + j) * numChannels
			for _, ch := range []int{ChanVessels, ChanDisc} {
				ref[k+ch], wt[k+ch] = bit(st[i].Masks[ch][j]), 1
			}
		}
	}
	res := &refineResult{Z: make([][]float32, n), Keep: make([]float64, n), Goal: make([]float64, n), Realism: make([]float64, n)}
	best := make([]float64, n)
	for i := range best {
		best[i] = math.Inf(1)
		res.Z[i] = append([]float32(nil), zs[i]...)
	}
	adam := inversion.Adam{LR: ro.LR}
	g := make([]float32, n*sz)
	for step := 0; step <= ro.Steps; step++ {
		img, err := m.GenerateFloats(z, n)
		if err != nil {
			return nil, err
		}
		lg, gg, err := t.Oracle.Steer(img, n, targets)
		if err != nil {
			return nil, err
		}
		ls, gs, err := t.Segmenter.KeepLoss(img, n, ref, wt)
		if err != nil {
			return nil, err
		}
		lreal, gr := nanRow(n), []float32(nil)
		if r.disc != nil {
			if lreal, gr, err = r.disc.Realism(img, n); err != nil {
				return nil, err
			}
		}
		for i := range n {
			var keep float64
			for j := 0; j < px; j++ {
				for k := 0; k < c; k++ {
					q := (i*px+j)*c + k
					g[q] = float32(ro.Goal)*gg[q] + float32(ro.Structure)*gs[q]
					if gr != nil {
						g[q] += float32(ro.Realism) * gr[q]
					}
					if regions[i][j] {
						continue
					}
					e := float64(img[q] - orig[q])
					keep += e * e
					g[q] += float32(ro.Keep * 2 * e / (outN[i] * float64(c)))
				}
			}
			keep /= outN[i] * float64(c)
			var zz float64
			for _, v := range z[i*d : (i+1)*d] {
				zz += float64(v) * float64(v)
			}
			total := ro.Keep*keep + ro.Goal*lg[i] + ro.Structure*ls[i] + ro.Prior*zz/float64(d)
			if ro.Realism > 0 {
				total += ro.Realism * lreal[i]
			}
			if step == 0 {
				res.StartKeep, res.StartGoal = append(res.StartKeep, keep), append(res.StartGoal, lg[i])
				res.StartRealism = append(res.StartRealism, lreal[i])
			}
			if total < best[i] {
				best[i] = total
				copy(res.Z[i], z[i*d:(i+1)*d])
				res.Keep[i], res.Goal[i], res.Realism[i] = keep, lg[i], lreal[i]
			}
		}
		if step == ro.Steps {
			break
		}
		gz, err := r.pullback(z, n, g, ro.Prior)
		if err != nil {
			return nil, err
		}
		adam.Step(z, gz)
	}
	for i, v := range res.Z {
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, fmt.Errorf("pseudocase: case %d: the region refinement diverged (latent value %v)", i, x)
			}
		}
	}
	return res, nil
}

// nanRow is n NaNs: the reading of a judge that is not there.
func nanRow(n int) []float64 {
	r := make([]float64, n)
	for i := range r {
		r[i] = math.NaN()
	}
	return r
}

// LesionRenders renders n retinas of the fundus dataset of seed with the
// request's lesions drawn by the renderer itself, the other lesions as the
// dataset draws them: a detachment at the requested extent and angle
// (spread around the clock when none is given), the requested number of
// blots (the draw's own positions, topped up on a ring), the requested cup.
// They are what real retinas with that lesion look like: the seam's
// yardstick, and the realism reference.
func LesionRenders(r Request, n, size int, seed int64) ([]float32, error) {
	ds, err := fundus.New(dataset.Options{N: n, Seed: seed, Size: size})
	if err != nil {
		return nil, err
	}
	sz := size * size * 3
	pix := make([]float32, n*sz)
	for i := range n {
		orig, err := ds.Params(i)
		if err != nil {
			return nil, err
		}
		p := orig
		for _, l := range r {
			switch l.Kind {
			case Detachment:
				p.Detachment, p.DetachmentAngle = l.Amount, l.Angle
				if !l.HasAngle {
					p.DetachmentAngle = float64(i) * 137.5 // spread around the clock
				}
			case Cup:
				p.CupToDisc = l.Amount
			case Haemorrhage:
				p.Haemorrhages = orig.Haemorrhages
				for len(p.Haemorrhages) < int(l.Amount) {
					a := 2*math.Pi*float64(len(p.Haemorrhages))/l.Amount + float64(i)
					p.Haemorrhages = append(p.Haemorrhages, fundus.Point{X: 0.5 + 0.25*math.Cos(a), Y: 0.5 + 0.25*math.Sin(a)})
				}
				p.Haemorrhages = p.Haemorrhages[:int(l.Amount)]
			}
		}
		img, _, _ := fundus.Render(p, size)
		dataset.ToFloats(img, 3, pix[i*sz:(i+1)*sz])
	}
	return pix, nil
}

// seamReference is the mean seam energy (SeamEnergy) along the borders of
// the regions the request r builds on n LesionRenders: what a real
// lesion's border looks like, the yardstick of an edit's seam.
func seamReference(seg *Segmenter, r Request, size int, ro RegionOptions) (float64, error) {
	n := ro.SeamRenders
	pix, err := LesionRenders(r, n, size, ro.SeamSeed)
	if err != nil {
		return 0, err
	}
	st, err := seg.Predict(pix, n)
	if err != nil {
		return 0, err
	}
	var sum float64
	var k int
	for i := range n {
		region, err := BuildRegion(r, st[i], size, ro.Mask, ro.Margin)
		if err != nil {
			continue // a render whose disc the segmenter misses (under a large detachment)
		}
		if e := SeamEnergy(pix[i*size*size*3:(i+1)*size*size*3], size, 3, Border(region, size)); !math.IsNaN(e) {
			sum += e
			k++
		}
	}
	if k == 0 {
		return 0, fmt.Errorf("pseudocase: no seam reference: no region could be built on %d renders", n)
	}
	return sum / float64(k), nil
}

// regionRun is what a region-constrained run shares across its blocks.
type regionRun struct {
	opt        RegionOptions
	ref        *refiner
	seamReal   float64
	reference  evaluate.Gaussian // the oracle's readings of RealismRenders real retinas with the lesions
	realVsReal float64
}

// RealismRenders is the size of the real set a region run's realism is
// measured against.
const RealismRenders = 256

// regionKinds are the images a region-constrained case adds to caseKinds.
var regionKinds = []string{"region", "composite"}

func newRegionRun(t Tools, opt Options) (*regionRun, error) {
	ro := *opt.Region
	if err := ro.Validate(); err != nil {
		return nil, err
	}
	for _, l := range opt.Request {
		if l.Kind == Detachment && !l.HasAngle {
			return nil, fmt.Errorf("%w: a region edit needs the detachment's position (detachment:%g@DEGREES)", ErrRegion, l.Amount)
		}
	}
	h, _, _ := t.Model.ImageShape()
	if ro.Mask != nil && len(ro.Mask) != h*h {
		return nil, fmt.Errorf("%w: the mask has %d pixels, the model draws %dx%d", ErrRegion, len(ro.Mask), h, h)
	}
	if ro.Steps > 0 {
		if err := t.Model.Differentiable(); err != nil {
			return nil, err
		}
	}
	seam, err := seamReference(t.Segmenter, opt.Request, h, ro)
	if err != nil {
		return nil, err
	}
	disc, err := generator.LoadDiscriminator(t.Model)
	switch {
	case errors.Is(err, generator.ErrNoDiscriminator) && ro.Realism == 0:
		disc = nil // nothing to weigh, nothing to record
	case err != nil && ro.Realism > 0:
		return nil, fmt.Errorf("%w: a realism weight needs the GAN's discriminator: %w", ErrRegion, err)
	case err != nil:
		return nil, err // a discriminator that is there but broken is never ignored
	}
	rr := &regionRun{opt: ro, ref: &refiner{m: t.Model, disc: disc}, seamReal: seam}
	// The realism yardstick: real retinas with the requested lesions, and
	// another real set of the run's size against them.
	read := func(n int, seed int64) ([][]float64, error) {
		pix, err := LesionRenders(opt.Request, n, h, seed)
		if err != nil {
			return nil, err
		}
		return t.Oracle.PredictChunked(pix, n)
	}
	ref, err := read(RealismRenders, ro.SeamSeed+1)
	if err != nil {
		return nil, err
	}
	rr.reference = evaluate.Moments(ref)
	if opt.N >= 2 {
		other, err := read(opt.N, ro.SeamSeed+2)
		if err != nil {
			return nil, err
		}
		if rr.realVsReal, err = evaluate.FrechetMoments(evaluate.Moments(other), rr.reference); err != nil {
			return nil, err
		}
	}
	return rr, nil
}

// discSHA is the checksum of the discriminator the run reads, or "".
func (rr *regionRun) discSHA(t Tools) string {
	if rr.ref.disc == nil {
		return ""
	}
	return t.Model.Info.DiscriminatorSHA256
}

// regionBlock is a block of cases being made region-constrained.
type regionBlock struct {
	z         [][]float32
	regions   [][]bool
	sb        []Structure
	res       *refineResult
	composite []float32 // [n, S, S, 3]
	cases     []*RegionCase
}

// refineBlock builds each case's region and refines its edited latent
// zAfter. The oracle's target of each case is the request, the other
// lesions held at the original's reading (cases[i].Before).
func (rr *regionRun) refineBlock(t Tools, req Request, targets map[string]float64, cases []Case, zAfter [][]float32, before []float32, sb []Structure) (*regionBlock, error) {
	h, _, _ := t.Model.ImageShape()
	n := len(zAfter)
	b := &regionBlock{regions: make([][]bool, n), sb: sb}
	free := make([][]bool, n)
	rows := make([][]float64, n)
	for i := range n {
		var err error
		if b.regions[i], err = BuildRegion(req, sb[i], h, rr.opt.Mask, rr.opt.Margin); err != nil {
			return nil, fmt.Errorf("case %d: %w", cases[i].Index, err)
		}
		if free[i], err = structureFree(req, sb[i], h, rr.opt.Mask, rr.opt.Margin); err != nil {
			return nil, fmt.Errorf("case %d: %w", cases[i].Index, err)
		}
		rows[i] = make([]float64, len(t.Oracle.Factors))
		for f, name := range t.Oracle.Factors {
			if v, ok := targets[name]; ok {
				rows[i][f] = v
			} else {
				rows[i][f] = cases[i].Before[f]
			}
		}
	}
	res, err := rr.ref.refine(t, rr.opt, zAfter, before, sb, b.regions, free, rows)
	if err != nil {
		return nil, err
	}
	b.z, b.res = res.Z, res
	return b, nil
}

// finish composites each refined picture with its original and reads the
// composites.
func (b *regionBlock) finish(t Tools, rr *regionRun, before, after []float32) error {
	h, w, c := t.Model.ImageShape()
	sz := h * w * c
	n := len(b.regions)
	b.composite = make([]float32, 0, n*sz)
	for i := range n {
		alpha := Feather(b.regions[i], h, rr.opt.Feather)
		b.composite = append(b.composite, Composite(after[i*sz:(i+1)*sz], before[i*sz:(i+1)*sz], alpha, c)...)
	}
	rc, err := t.Oracle.PredictChunked(b.composite, n)
	if err != nil {
		return err
	}
	sc, err := t.Segmenter.Predict(b.composite, n)
	if err != nil {
		return err
	}
	b.cases = make([]*RegionCase, n)
	for i := range n {
		var area float64
		for _, v := range b.regions[i] {
			if v {
				area++
			}
		}
		band := Border(b.regions[i], h)
		rc := &RegionCase{Area: area / float64(h*w),
			KeepStart: b.res.StartKeep[i], Keep: b.res.Keep[i], GoalStart: b.res.StartGoal[i], Goal: b.res.Goal[i],
			RealismStart: b.res.StartRealism[i], Realism: b.res.Realism[i],
			Seam: SeamEnergy(after[i*sz:(i+1)*sz], h, c, band), SeamComposite: SeamEnergy(b.composite[i*sz:(i+1)*sz], h, c, band),
			CompAfter: rc[i]}
		rc.CompVesselDice, rc.CompLesionArea, rc.CompDiscShift = compareStructure(b.sb[i], sc[i], h)
		b.cases[i] = rc
	}
	return nil
}

// regionColumns end the rows of a region-constrained run.
func regionColumns(factors []string) []string {
	cols := []string{"region_area_fraction", "mse_outside_region_editor_step", "mse_outside_region_refined",
		"goal_loss_editor_step", "goal_loss_refined", "discriminator_loss_editor_step", "discriminator_loss_refined",
		"seam_energy_refined", "seam_energy_composite"}
	for _, f := range factors {
		cols = append(cols, "composite_after_"+f)
	}
	return append(cols, "composite_vessel_dice_outside_lesion", "composite_lesion_area_fraction", "composite_disc_shift_px")
}

func regionRow(r *RegionCase) []string {
	row := []string{num(r.Area), num(r.KeepStart), num(r.Keep), num(r.GoalStart), num(r.Goal), num(r.RealismStart), num(r.Realism), num(r.Seam), num(r.SeamComposite)}
	for _, v := range r.CompAfter {
		row = append(row, num(v))
	}
	return append(row, num(r.CompVesselDice), num(r.CompLesionArea), num(r.CompDiscShift))
}

// summarizeRegion fills s.Region's means from the cases (all region cases).
func summarizeRegion(s *Summary, cases []Case) {
	r := s.Region
	*r = RegionSummary{Options: r.Options, Discriminator: r.Discriminator, SeamReal: r.SeamReal, Reference: r.Reference, RealVsReal: r.RealVsReal}
	n := float64(len(cases))
	if n == 0 {
		return
	}
	comp := make([]Case, len(cases))
	var seam, seamC, realStart, real float64
	for i, c := range cases {
		g := c.Region
		realStart += g.RealismStart / n
		real += g.Realism / n
		r.Area += g.Area / n
		r.KeepPSNRStart += inversion.PSNR(g.KeepStart) / n
		r.KeepPSNR += inversion.PSNR(g.Keep) / n
		r.GoalStart += g.GoalStart / n
		r.Goal += g.Goal / n
		seam += g.Seam / n
		seamC += g.SeamComposite / n
		comp[i] = c
		comp[i].Region = nil
		comp[i].After, comp[i].VesselDice, comp[i].LesionArea, comp[i].DiscShift = g.CompAfter, g.CompVesselDice, g.CompLesionArea, g.CompDiscShift
	}
	if !math.IsNaN(real) { // NaN: the model ships no discriminator
		r.RealismStart, r.Realism = &realStart, &real
	}
	if r.SeamReal > 0 {
		r.SeamRatio, r.SeamRatioComposite = seam/r.SeamReal, seamC/r.SeamReal
	}
	if len(cases) >= 2 {
		refined, composed := make([][]float64, len(cases)), make([][]float64, len(cases))
		for i, c := range cases {
			refined[i], composed[i] = c.After, c.Region.CompAfter
		}
		fr, err1 := evaluate.FrechetMoments(evaluate.Moments(refined), r.Reference)
		fc, err2 := evaluate.FrechetMoments(evaluate.Moments(composed), r.Reference)
		if err1 == nil && err2 == nil {
			r.Frechet, r.FrechetComposite = &fr, &fc
			if r.RealVsReal > 0 {
				a, b := fr/r.RealVsReal, fc/r.RealVsReal
				r.FrechetRatio, r.FrechetRatioComp = &a, &b
			}
		}
	}
	cs := summarize(&Summary{Factors: s.Factors, Target: s.Target}, comp)
	r.Composite = CompositeSummary{GoalMet: cs.GoalMet, AllGoalsMet: cs.AllGoalsMet, AngleError: cs.AngleError,
		VesselDice: cs.VesselDice, DiscShift: cs.DiscShift, DiscMissing: cs.DiscMissing, After: cs.After}
}
