package pseudocase

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"latentedit/dataset"
	"latentedit/edit"
	"latentedit/evaluate"
	"latentedit/generator"
	"latentedit/internal/atomicfile"
	"latentedit/internal/progress"
)

// defaultMaxStep bounds a step when Options.MaxStep is 0: z ~ N(0, I) in
// 64 dimensions has norm about 8, so six units already cross most of the
// latent distribution.
const defaultMaxStep = 6

// Tools are the trained parts a run needs; nothing is trained during a run.
type Tools struct {
	Model      *generator.Model
	Editor     edit.Editor
	EditorName string
	Oracle     *evaluate.Oracle
	Segmenter  *Segmenter
	Cal        *Calibration
}

// Options of one run.
type Options struct {
	Request Request
	N       int   // cases in the whole (unsharded) run
	Seed    int64 // case i edits the latent of seed Seed+i
	Shard   Shard
	Out     string
	// MaxStep bounds each edit step (default 6: z ~ N(0, I), so a step of
	// six already crosses most of the latent distribution).
	MaxStep float64
	Log     io.Writer
	JSON    bool
	// Pictures, when set, are the run's cases (pseudocase --image): case i
	// edits the inversion of picture i and is scored against the picture;
	// N is their number and Seed is unused. A picture run is whole (no
	// shards).
	Pictures []Given
	// Region, when set, makes every case region-constrained (constrain.go):
	// the editor's step is refined so the lesion appears inside the request's
	// region and the rest stays the original's, and a feathered composite is
	// scored beside it.
	Region *RegionOptions
}

// Case is one pseudo-case's record: a row of cases.csv.
type Case struct {
	Index  int
	Seed   int64
	Before []float64 // oracle reading, in the oracle's factor order
	After  []float64
	Steps  []edit.Step
	// Scale is the factor the solved steps were shrunk by to respect
	// MaxStep: 1 when the request was within reach of the step budget.
	Scale float64
	// VesselDice is the Dice overlap of the segmented vessels before and
	// after, outside the lesion area (the union of both images' segmented
	// lesions, grown by one pixel); 1 when neither has a vessel there.
	VesselDice float64
	// LesionArea is the fraction of the image excluded from VesselDice.
	LesionArea float64
	// DiscShift is the distance in pixels between the located disc centres
	// (NaN when the disc was not found in one of the images).
	DiscShift float64
	// Blobs counts small separate lesions (haemorrhage-sized components of
	// the segmented lesion mask) before and after: a reading of the
	// haemorrhage count that does not come from the oracle.
	BlobsBefore, BlobsAfter int
	// A picture's case (Options.Pictures): its path, and its inversion's
	// PSNR and vessel Dice against it.
	Picture                string
	InversionPSNR, InvDice float64
	// Region is a region-constrained case's record (Options.Region); nil
	// otherwise. After, VesselDice, DiscShift… are then of the refined
	// picture itself; the composite's are in Region.
	Region *RegionCase
}

// RegionCase is what a region-constrained case adds to its Case.
type RegionCase struct {
	Area float64 // fraction of the picture in the region
	// Mean squared error outside the region (pixels in [-1, 1]) and the
	// oracle's normalised error to the request, after the editor's step
	// alone (Start) and after the refinement.
	KeepStart, Keep, GoalStart, Goal float64
	// The model's discriminator's loss softplus(−D(x)) (low: real to D)
	// after the editor's step and refined; NaN when the model ships no D.
	RealismStart, Realism float64
	// Seam energy along the region's border (SeamEnergy) of the refined
	// picture and of the composite.
	Seam, SeamComposite float64
	// The composite read by the oracle and the segmenter, as After,
	// VesselDice, LesionArea and DiscShift are for the refined picture.
	CompAfter                                     []float64
	CompVesselDice, CompLesionArea, CompDiscShift float64
}

// Summary is the mean of a run's cases.
type Summary struct {
	Editor  string `json:"editor"`
	Method  string `json:"method"`
	Request string `json:"request"`
	Cases   int    `json:"cases"`
	Lo      int    `json:"first_case"`
	// RunCases, ShardIndex and ShardCount place the summary in its run
	// (--n, --shard i/N; 0 of 1 for a whole run): with Model they are what
	// Merge checks, since the file name alone can be renamed.
	RunCases   int                `json:"run_cases"`
	ShardIndex int                `json:"shard_index"`
	ShardCount int                `json:"shard_count"`
	Model      string             `json:"model_sha256"` // the generator's weights
	Seed       int64              `json:"seed"`
	MaxStep    float64            `json:"max_step"`
	Factors    []string           `json:"factors"`
	Target     map[string]float64 `json:"target"`
	Before     map[string]float64 `json:"mean_before"`
	After      map[string]float64 `json:"mean_after"`
	// Reached: fraction of cases whose after reading of each requested
	// factor is nearer the target than the before reading was.
	Reached map[string]float64 `json:"fraction_moved_towards_target"`
	// GoalMet: fraction of cases whose after reading of each requested part
	// is within the tolerance of its target (GoalTolerances):
	// detachment extent ±0.1, its angle ±20° ("detachment_angle"),
	// haemorrhage count ±1, cup-to-disc ±0.05; AllGoalsMet, every part at once.
	GoalMet     map[string]float64 `json:"fraction_goal_met"`
	AllGoalsMet float64            `json:"fraction_all_goals_met"`
	// AngleError is the mean |after − requested| detachment angle in
	// degrees, read from the oracle's detachment_cos/sin (null without @angle).
	AngleError     *float64 `json:"mean_detachment_angle_error_deg"`
	VesselDice     float64  `json:"mean_vessel_dice_outside_lesion"`
	VesselDiceGood float64  `json:"fraction_vessel_dice_ge_0_85"`
	DiscShift      *float64 `json:"mean_disc_shift_px"` // null when no disc was found
	DiscShiftGood  float64  `json:"fraction_disc_shift_le_2px"`
	DiscMissing    int      `json:"disc_not_found"`
	LesionArea     float64  `json:"mean_lesion_area_fraction"`
	// Scaled: fraction of cases whose solved steps exceeded MaxStep and were
	// shrunk (the request was out of the editor's reach).
	Scaled      float64 `json:"fraction_steps_scaled_down"`
	MeanScale   float64 `json:"mean_step_scale"`
	BlobsBefore float64 `json:"mean_lesion_blobs_before"`
	BlobsAfter  float64 `json:"mean_lesion_blobs_after"`
	// A picture run's (--image) number of pictures, and the means of their
	// inversions' PSNR and vessel Dice against them.
	Pictures      int      `json:"pictures,omitempty"`
	InversionPSNR *float64 `json:"mean_inversion_psnr_db,omitempty"`
	InversionDice *float64 `json:"mean_inversion_vessel_dice,omitempty"`
	// Seconds is wall time; a merged run has the sum of its shards' (the
	// compute spent), and it is the one field that differs from the same
	// run made whole.
	Seconds float64 `json:"seconds"`
	// How far the judges can be trusted: the oracle's held-out R² per factor
	// and the segmenter's held-out Dice per mask, both on rendered images.
	OracleR2      map[string]float64 `json:"oracle_held_out_r2"`
	SegmenterDice map[string]float64 `json:"segmenter_held_out_dice"`
	// Region sums up a region-constrained run (Options.Region).
	Region *RegionSummary `json:"region,omitempty"`
}

// RegionSummary is the part of a summary a region-constrained run adds.
type RegionSummary struct {
	Options string `json:"options"` // RegionOptions.Spec
	// Discriminator is the sha256 of the model's discriminator when the run
	// read one (its weights, unlike the generator's, are not in Model).
	Discriminator string `json:"discriminator_sha256,omitempty"`
	// SeamReal is the mean seam energy along the region borders of real
	// renders with the requested lesions (seamReference).
	SeamReal float64 `json:"seam_energy_real_lesion_borders"`
	Area     float64 `json:"mean_region_area_fraction"`
	// PSNR outside the region against the original (from the mean squared
	// error of each case), after the editor's step alone and refined.
	KeepPSNRStart float64 `json:"mean_psnr_outside_region_editor_step_db"`
	KeepPSNR      float64 `json:"mean_psnr_outside_region_refined_db"`
	GoalStart     float64 `json:"mean_goal_loss_editor_step"`
	Goal          float64 `json:"mean_goal_loss_refined"`
	// The discriminator's mean loss softplus(−D(x)), when the model ships
	// its D (ln 2 ≈ 0.69 is D undecided; lower reads as real).
	RealismStart *float64 `json:"mean_discriminator_loss_editor_step,omitempty"`
	Realism      *float64 `json:"mean_discriminator_loss_refined,omitempty"`
	// Seam energy of the cases over the real borders' (1 is a real edge).
	SeamRatio          float64 `json:"seam_ratio_refined"`
	SeamRatioComposite float64 `json:"seam_ratio_composite"`
	// Composite: the goals and structure of the composites, as the
	// summary's own fields are for the refined pictures.
	Composite CompositeSummary `json:"composite"`
	// Realism: the Fréchet distance of the oracle's readings (the five
	// factor values) of the cases against RealismRenders real retinas with
	// the requested lesions (LesionRenders; their fitted Gaussian is
	// Reference), beside the same distance for another set of real renders
	// as many as the run's cases (RealVsReal, what a perfect edit scores).
	Reference        evaluate.Gaussian `json:"realism_reference"`
	RealVsReal       float64           `json:"frechet_real_vs_real"`
	Frechet          *float64          `json:"frechet_refined,omitempty"`
	FrechetComposite *float64          `json:"frechet_composite,omitempty"`
	FrechetRatio     *float64          `json:"frechet_ratio_refined,omitempty"`
	FrechetRatioComp *float64          `json:"frechet_ratio_composite,omitempty"`
}

// CompositeSummary is the composites' share of a region summary.
type CompositeSummary struct {
	GoalMet     map[string]float64 `json:"fraction_goal_met"`
	AllGoalsMet float64            `json:"fraction_all_goals_met"`
	AngleError  *float64           `json:"mean_detachment_angle_error_deg"`
	VesselDice  float64            `json:"mean_vessel_dice_outside_lesion"`
	DiscShift   *float64           `json:"mean_disc_shift_px"`
	DiscMissing int                `json:"disc_not_found"`
	After       map[string]float64 `json:"mean_after"`
}

// Names of the files a run writes: base.ext for a whole run,
// base-IIII-of-NNNN.ext for a shard (parseShardName reads them back).
func shardName(base, ext string, s Shard) string {
	if s.N == 1 {
		return base + "." + ext
	}
	return fmt.Sprintf("%s-%04d-of-%04d.%s", base, s.I, s.N, ext)
}

func csvName(s Shard) string     { return shardName("cases", "csv", s) }
func exactName(s Shard) string   { return shardName("cases", "jsonl", s) }
func summaryName(s Shard) string { return shardName("summary", "json", s) }

// caseKinds are the images of one case, in the order of a grid row.
var caseKinds = []string{"before", "after", "before-vessels", "after-vessels", "lesion-area"}

// CaseFile is the path of one image of case i: kind is before, after,
// before-vessels, after-vessels or lesion-area.
func CaseFile(out string, i int, kind string) string {
	return filepath.Join(out, "cases", fmt.Sprintf("%06d-%s.png", i, kind))
}

// Run makes the shard's pseudo-cases: for each, the before image G(z), the
// oracle's reading of it, the steps that take it to the request's targets,
// the after image, both read by the oracle and the segmenter. It writes the
// images, masks, a CSV (header only in shard 0, so the parts in order
// concatenate to the unsharded file), the exact cases (cases.jsonl: the
// CSV's four decimals are too few to recompute the summary from, and Merge
// must) and, last, the summary: a shard without one is unfinished.
func Run(t Tools, opt Options) (*Summary, error) {
	if opt.N < 1 {
		return nil, fmt.Errorf("pseudocase: --n must be ≥ 1, got %d", opt.N)
	}
	if opt.MaxStep == 0 {
		opt.MaxStep = defaultMaxStep
	}
	if opt.Shard.N == 0 {
		opt.Shard = Shard{0, 1}
	}
	if opt.Pictures != nil {
		if opt.Shard.N > 1 {
			return nil, fmt.Errorf("pseudocase: a run on given pictures is whole: no --shard")
		}
		opt.N, opt.Shard = len(opt.Pictures), Shard{0, 1}
	}
	if h, w, c := t.Model.ImageShape(); h != t.Segmenter.Size || w != h || c != 3 || t.Oracle.Size != h {
		return nil, fmt.Errorf("pseudocase: model images are %dx%dx%d; the segmenter reads %dx%dx3 and the oracle %dx%d", h, w, c, t.Segmenter.Size, t.Segmenter.Size, t.Oracle.Size, t.Oracle.Size)
	}
	plan, err := t.Cal.Plan(opt.Request, opt.MaxStep)
	if err != nil {
		return nil, err
	}
	targets := opt.Request.Targets()
	var rr *regionRun
	if opt.Region != nil {
		if rr, err = newRegionRun(t, opt); err != nil {
			return nil, err
		}
	}
	lo, hi := opt.Shard.Range(opt.N)
	if err := os.MkdirAll(filepath.Join(opt.Out, "cases"), 0o755); err != nil {
		return nil, fmt.Errorf("pseudocase: %w", err)
	}
	start := timeNow()
	bar := progress.New(opt.Log, hi-lo, "pseudocases", opt.JSON)
	var cases []Case
	for s := lo; s < hi; s += predictChunk {
		e := min(hi, s+predictChunk)
		block, err := runBlock(t, plan, targets, opt, rr, s, e)
		if err != nil {
			return nil, err
		}
		cases = append(cases, block...)
		bar.Set(e-lo, nil)
	}
	bar.Finish()
	head := runHead(t, opt, targets, lo)
	if rr != nil {
		head.Region = &RegionSummary{Options: rr.opt.Spec(), Discriminator: rr.discSHA(t), SeamReal: rr.seamReal, Reference: rr.reference, RealVsReal: rr.realVsReal}
	}
	var header []string
	if opt.Shard.I == 0 { // not lo == 0: with fewer cases than shards, shard 1 may start at case 0 too
		header = csvHeader(t, plan)
		if opt.Pictures != nil {
			header = append(header, pictureColumns...)
		}
		if rr != nil {
			header = append(header, regionColumns(t.Oracle.Factors)...)
		}
	}
	if err := atomicfile.Write(filepath.Join(opt.Out, csvName(opt.Shard)), func(w io.Writer) error {
		return writeRows(w, header, head, cases)
	}); err != nil {
		return nil, err
	}
	if err := writeExact(filepath.Join(opt.Out, exactName(opt.Shard)), cases); err != nil {
		return nil, err
	}
	sum := summarize(head, cases)
	sum.Seconds = timeNow().Sub(start).Seconds()
	if err := writeSummary(filepath.Join(opt.Out, summaryName(opt.Shard)), sum); err != nil {
		return nil, err
	}
	return sum, nil
}

func writeSummary(path string, sum *Summary) error {
	raw, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return fmt.Errorf("pseudocase: summary: %w", err)
	}
	return atomicfile.WriteFile(path, append(raw, '\n'), atomicfile.DefaultPerm)
}

// runBlock makes cases [s, e), at most predictChunk of them.
func runBlock(t Tools, plan *Plan, targets map[string]float64, opt Options, rr *regionRun, s, e int) ([]Case, error) {
	m := t.Model
	var zs [][]float32
	var before []float32
	if opt.Pictures != nil {
		// The before picture is the given one; the edits move its inversion.
		for _, p := range opt.Pictures[s:e] {
			zs = append(zs, p.Latent)
			before = append(before, p.Pixels...)
		}
	} else {
		for i := s; i < e; i++ {
			zs = append(zs, m.Latent(opt.Seed+int64(i)))
		}
		var err error
		if before, err = m.GenerateChunked(zs, predictChunk); err != nil {
			return nil, err
		}
	}
	rb, err := t.Oracle.PredictChunked(before, len(zs))
	if err != nil {
		return nil, err
	}
	sb, err := t.Segmenter.Predict(before, len(zs))
	if err != nil {
		return nil, err
	}
	cases := make([]Case, len(zs))
	seqs := make([][]edit.Step, len(zs))
	for i := range zs {
		steps, scale := plan.Steps(t.Cal, targets, rb[i])
		seqs[i] = steps
		cases[i] = Case{Index: s + i, Seed: opt.Seed + int64(s+i), Before: rb[i], Steps: steps, Scale: scale}
		if opt.Pictures != nil {
			p := opt.Pictures[s+i]
			cases[i].Seed, cases[i].Picture, cases[i].InversionPSNR, cases[i].InvDice = -1, p.Path, p.PSNR, p.VesselDice
		}
	}
	paths, err := edit.Apply(t.Editor, zs, seqs)
	if err != nil {
		return nil, fmt.Errorf("cases %d–%d: %w", s, e-1, err)
	}
	zAfter := make([][]float32, len(zs))
	for i, path := range paths {
		zAfter[i] = zs[i]
		if len(path) > 0 {
			zAfter[i] = path[len(path)-1]
		}
	}
	var reg *regionBlock
	if rr != nil {
		if reg, err = rr.refineBlock(t, opt.Request, targets, cases, zAfter, before, sb); err != nil {
			return nil, fmt.Errorf("cases %d–%d: %w", s, e-1, err)
		}
		zAfter = reg.z
	}
	after, err := m.GenerateChunked(zAfter, predictChunk)
	if err != nil {
		return nil, err
	}
	ra, err := t.Oracle.PredictChunked(after, len(zs))
	if err != nil {
		return nil, err
	}
	sa, err := t.Segmenter.Predict(after, len(zs))
	if err != nil {
		return nil, err
	}
	if reg != nil {
		if err := reg.finish(t, rr, before, after); err != nil {
			return nil, err
		}
	}
	h, w, c := m.ImageShape()
	sz := h * w * c
	for i := range cases {
		cases[i].After = ra[i]
		cases[i].VesselDice, cases[i].LesionArea, cases[i].DiscShift = compareStructure(sb[i], sa[i], h)
		cases[i].BlobsBefore, cases[i].BlobsAfter = blobs(sb[i].Masks[ChanLesions], h), blobs(sa[i].Masks[ChanLesions], h)
		area := lesionArea(sb[i], sa[i], h)
		files := map[string]image.Image{
			"before":         dataset.FromFloats(before[i*sz:(i+1)*sz], h, w, c),
			"after":          dataset.FromFloats(after[i*sz:(i+1)*sz], h, w, c),
			"before-vessels": maskImage(sb[i].Masks[ChanVessels], h),
			"after-vessels":  maskImage(sa[i].Masks[ChanVessels], h),
			"lesion-area":    maskImage(area, h),
		}
		kinds := caseKinds
		if reg != nil {
			cases[i].Region = reg.cases[i]
			files["region"] = maskImage(reg.regions[i], h)
			files["composite"] = dataset.FromFloats(reg.composite[i*sz:(i+1)*sz], h, w, c)
			kinds = append(kinds[:len(kinds):len(kinds)], regionKinds...)
		}
		if opt.Pictures != nil {
			pix, err := m.GenerateFloats(zs[i], 1)
			if err != nil {
				return nil, err
			}
			files["inverted"] = dataset.FromFloats(pix, h, w, c)
			kinds = append(kinds[:len(kinds):len(kinds)], "inverted")
		}
		for _, kind := range kinds {
			if err := writePNG(CaseFile(opt.Out, cases[i].Index, kind), files[kind]); err != nil {
				return nil, err
			}
		}
	}
	return cases, nil
}

// lesionArea is the union of both images' segmented lesions grown by one
// pixel: vessels there are allowed to change (a detachment blurs and
// displaces them, a haemorrhage covers them).
func lesionArea(b, a Structure, size int) []bool {
	out := make([]bool, size*size)
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			j := y*size + x
			if !b.Masks[ChanLesions][j] && !a.Masks[ChanLesions][j] {
				continue
			}
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					yy, xx := y+dy, x+dx
					if yy >= 0 && yy < size && xx >= 0 && xx < size {
						out[yy*size+xx] = true
					}
				}
			}
		}
	}
	return out
}

// compareStructure returns the vessel Dice outside the lesion area, the
// area's fraction of the image and the disc shift in pixels.
func compareStructure(b, a Structure, size int) (dice, area, shift float64) {
	excl := lesionArea(b, a, size)
	var nx float64
	for _, x := range excl {
		if x {
			nx++
		}
	}
	shift = math.NaN()
	if b.DiscFound && a.DiscFound {
		shift = math.Hypot(a.DiscX-b.DiscX, a.DiscY-b.DiscY)
	}
	return vesselDice(b, a, excl), nx / float64(len(excl)), shift
}

// maxBlob is the largest lesion component, in pixels, counted as a
// haemorrhage: a 64×64 blot covers about 4–30 pixels, a detachment hundreds.
const maxBlob = 40

// blobs counts the 4-connected components of m of 2 to maxBlob pixels.
func blobs(m []bool, size int) int {
	n := 0
	for _, area := range components(m, size) {
		if area >= 2 && area <= maxBlob {
			n++
		}
	}
	return n
}

// components returns the area in pixels of every 4-connected component of
// the size×size mask m.
func components(m []bool, size int) []int {
	seen := make([]bool, len(m))
	var stack, areas []int
	for j, v := range m {
		if !v || seen[j] {
			continue
		}
		area := 0
		seen[j] = true
		stack = append(stack[:0], j)
		for len(stack) > 0 {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			area++
			x, y := p%size, p/size
			for _, q := range [4][2]int{{x - 1, y}, {x + 1, y}, {x, y - 1}, {x, y + 1}} {
				if q[0] < 0 || q[0] >= size || q[1] < 0 || q[1] >= size {
					continue
				}
				k := q[1]*size + q[0]
				if m[k] && !seen[k] {
					seen[k] = true
					stack = append(stack, k)
				}
			}
		}
		areas = append(areas, area)
	}
	return areas
}

func maskImage(m []bool, size int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, size, size))
	for j, v := range m {
		if v {
			g.Pix[j] = 255
		}
	}
	return g
}

func writePNG(path string, img image.Image) error {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("pseudocase: %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, buf.Bytes(), atomicfile.DefaultPerm)
}

// num formats a float for the CSV: fixed precision keeps sharded and whole
// runs byte-identical and the file readable; NaN is empty.
func num(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'f', 4, 64)
}

// csvHeader is the first row of cases.csv: the columns of csvRow.
func csvHeader(t Tools, plan *Plan) []string {
	row := []string{"case", "seed", "editor", "method", "request"}
	for _, f := range t.Oracle.Factors {
		row = append(row, "target_"+f, "before_"+f, "after_"+f)
	}
	for _, f := range plan.Factors {
		row = append(row, "step_"+f)
	}
	row = append(row, "step_scale")
	return append(row, "vessel_dice_outside_lesion", "lesion_area_fraction", "disc_shift_px", "lesion_blobs_before", "lesion_blobs_after")
}

// pictureColumns end the rows of a run on given pictures.
var pictureColumns = []string{"picture", "inversion_psnr_db", "inversion_vessel_dice"}

// writeRows writes the CSV of cases of the run head describes, the header
// first when it is not nil. Merge writes it again from the exact cases to
// check a shard's CSV against them.
func writeRows(w io.Writer, header []string, head *Summary, cases []Case) error {
	cw := csv.NewWriter(w)
	if header != nil {
		if err := cw.Write(header); err != nil {
			return err
		}
	}
	for _, c := range cases {
		seed := strconv.FormatInt(c.Seed, 10)
		if head.Pictures > 0 {
			seed = "" // a given picture has no seed
		}
		row := []string{strconv.Itoa(c.Index), seed, head.Editor, head.Method, head.Request}
		for f, name := range head.Factors {
			tg := ""
			if v, ok := head.Target[name]; ok {
				tg = num(v)
			}
			row = append(row, tg, num(c.Before[f]), num(c.After[f]))
		}
		for _, s := range c.Steps {
			row = append(row, num(float64(s.T)))
		}
		row = append(row, num(c.Scale))
		row = append(row, num(c.VesselDice), num(c.LesionArea), num(c.DiscShift), strconv.Itoa(c.BlobsBefore), strconv.Itoa(c.BlobsAfter))
		if head.Pictures > 0 {
			row = append(row, c.Picture, num(c.InversionPSNR), num(c.InvDice))
		}
		if head.Region != nil {
			if c.Region == nil {
				return fmt.Errorf("case %d has no region record in a region run", c.Index)
			}
			row = append(row, regionRow(c.Region)...)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// runHead is the summary of no cases yet: what says which run and shard
// the cases belong to.
func runHead(t Tools, opt Options, targets map[string]float64, lo int) *Summary {
	return &Summary{Editor: t.EditorName, Method: t.Editor.Method(), Request: opt.Request.String(), Lo: lo,
		RunCases: opt.N, ShardIndex: opt.Shard.I, ShardCount: opt.Shard.N, Model: t.Model.Info.WeightsSHA256,
		Seed: opt.Seed, MaxStep: opt.MaxStep, Factors: t.Oracle.Factors, Target: targets,
		OracleR2: t.Oracle.R2, SegmenterDice: t.Segmenter.Dice, Pictures: len(opt.Pictures)}
}

// GoalTolerances are issue #16's tolerances of a reached request, by part:
// the factor's name, or detachment_angle in degrees.
var GoalTolerances = map[string]float64{Detachment: 0.1, "detachment_angle": 20, Haemorrhage: 1, Cup: 0.05}

// goals reads which requested parts case c reached within GoalTolerances,
// and its detachment angle error in degrees (NaN without a requested angle).
func goals(fs []string, targets map[string]float64, c Case) (met map[string]bool, angleErr float64) {
	at := func(name string) (float64, bool) {
		for f, n := range fs {
			if n == name {
				return c.After[f], true
			}
		}
		return 0, false
	}
	met, angleErr = map[string]bool{}, math.NaN()
	for _, part := range []string{Detachment, Haemorrhage, Cup} {
		tg, ok := targets[part]
		v, has := at(part)
		if ok && has {
			met[part] = math.Abs(v-tg) <= GoalTolerances[part]
		}
	}
	tc, okc := targets["detachment_cos"]
	ts, oks := targets["detachment_sin"]
	ac, hc := at("detachment_cos")
	as, hs := at("detachment_sin")
	if okc && oks && hc && hs {
		d := math.Atan2(as, ac) - math.Atan2(ts, tc)
		d = math.Abs(math.Remainder(d, 2*math.Pi)) * 180 / math.Pi
		angleErr = d
		met["detachment_angle"] = d <= GoalTolerances["detachment_angle"]
	}
	return met, angleErr
}

// summarize fills head (runHead's, or Merge's) with the means of cases.
// Merge calls it on the exact cases of all shards in order, so the sums
// add the same float64s in the same order as the whole run's.
func summarize(s *Summary, cases []Case) *Summary {
	fs, targets := s.Factors, s.Target
	s.Cases = len(cases)
	s.Before, s.After, s.Reached, s.GoalMet = map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}
	s.AllGoalsMet, s.AngleError = 0, nil
	n := float64(len(cases))
	if n == 0 {
		return s
	}
	var discN, shift, angleSum, angleN float64
	for _, c := range cases {
		met, angleErr := goals(fs, targets, c)
		all := len(met) > 0
		for part, ok := range met {
			if _, seen := s.GoalMet[part]; !seen {
				s.GoalMet[part] = 0
			}
			if ok {
				s.GoalMet[part] += 1 / n
			}
			all = all && ok
		}
		if all {
			s.AllGoalsMet += 1 / n
		}
		if !math.IsNaN(angleErr) {
			angleSum += angleErr
			angleN++
		}
		for f, name := range fs {
			s.Before[name] += c.Before[f] / n
			s.After[name] += c.After[f] / n
			if tg, ok := targets[name]; ok && math.Abs(c.After[f]-tg) < math.Abs(c.Before[f]-tg) {
				s.Reached[name] += 1 / n
			}
		}
		s.VesselDice += c.VesselDice / n
		s.LesionArea += c.LesionArea / n
		s.BlobsBefore += float64(c.BlobsBefore) / n
		s.MeanScale += c.Scale / n
		if c.Scale < 1 {
			s.Scaled += 1 / n
		}
		s.BlobsAfter += float64(c.BlobsAfter) / n
		if c.VesselDice >= 0.85 {
			s.VesselDiceGood += 1 / n
		}
		if math.IsNaN(c.DiscShift) {
			s.DiscMissing++
			continue
		}
		shift += c.DiscShift
		discN++
		if c.DiscShift <= 2 {
			s.DiscShiftGood++
		}
	}
	if s.Pictures > 0 {
		var psnr, dice float64
		for _, c := range cases {
			psnr, dice = psnr+c.InversionPSNR/n, dice+c.InvDice/n
		}
		s.InversionPSNR, s.InversionDice = &psnr, &dice
	}
	if discN > 0 {
		shift /= discN
		s.DiscShift = &shift
		s.DiscShiftGood /= discN
	}
	if angleN > 0 {
		a := angleSum / angleN
		s.AngleError = &a
	}
	if s.Region != nil {
		summarizeRegion(s, cases)
	}
	return s
}

// timeNow is time.Now; a variable so the summary's only clock reading is
// obvious (the CSV and images never depend on it).
var timeNow = time.Now
