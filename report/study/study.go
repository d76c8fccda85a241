// Package study runs the comparison of editing methods on one model and
// writes it as a report a person reads in a browser: the sequential-edit
// grid (original, then smile, bangs, pitch, yaw, hair colour, hair length
// applied one after another, one row per method), the commutativity chart
// (latent, image and attribute space), attribute-change heat maps, traversal
// sweeps and a table of every number, plus the same numbers as JSON.
//
// It sits above evaluate (which measures) and report (which draws), and
// below the commands: `evaluate` and `demo` call Run.
package study

import (
	"encoding/json"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"latentedit/dataset"
	"latentedit/edit"
	"latentedit/evaluate"
	"latentedit/generator"
	"latentedit/internal/atomicfile"
	"latentedit/internal/figure"
	"latentedit/internal/progress"
	"latentedit/workspace"
)

// SequenceFactors are the columns of the sequential-edit grid after the
// original, in the order of the study (S, B, P, Y, C, L), for a judge that
// reads them all (faces).
var SequenceFactors = []string{"smile", "bangs", "pitch", "yaw", "hair_colour", "hair_length"}

// sequenceFactors are the grid's columns for a judge of factors: the
// study's where it reads them all, else its own first six (MNIST's shape,
// fundus lesions), so every dataset's grid shows what its editors can move.
func sequenceFactors(factors []string) []string {
	all := true
	for _, f := range SequenceFactors {
		all = all && slices.Contains(factors, f)
	}
	if all {
		return SequenceFactors
	}
	return factors[:min(len(factors), len(SequenceFactors))]
}

// Options sizes the measurements. Zero values take the defaults.
type Options struct {
	N           int       // latents per attribute-change and identity measurement (32)
	CommLatents int       // latents for commutativity (6; × K(K−1)/2 pairs each)
	T           float32   // attribute change is measured at ±T (1.5)
	CommT       float32   // commutativity steps t = s (2)
	Move        float64   // sequential grid and identity: move the target factor by this many spreads (1.5)
	MaxT        float32   // largest step the grid and identity may use (6)
	QualityN    int       // images per Fréchet distance (256)
	Seeds       []int64   // rows of sequential grids (one grid per seed)
	Log         io.Writer `json:"-"`
	JSON        bool      `json:"-"` // progress as JSON lines
	Links       []Link    `json:"-"` // other pages to link from the header

	// Quality, when set, is the model's generative quality (evaluate
	// --quality), shown in its own section of the report and kept in
	// metrics.json.
	Quality *evaluate.Quality `json:"-"`
	// Classifier, when set (datasets of classes: MNIST), also reads each
	// matched direction's edit for a change of class (Editor.ClassKept).
	Classifier *evaluate.Classifier `json:"-"`
}

func (o *Options) defaults() {
	if o.N == 0 {
		o.N = 32
	}
	if o.CommLatents == 0 {
		o.CommLatents = 6
	}
	if o.T == 0 {
		o.T = 1.5
	}
	if o.CommT == 0 {
		o.CommT = 2
	}
	if o.Move == 0 {
		o.Move = 1.5
	}
	if o.MaxT == 0 {
		o.MaxT = 6
	}
	if o.QualityN == 0 {
		o.QualityN = 256
	}
	if len(o.Seeds) == 0 {
		o.Seeds = []int64{7, 21, 42}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Editor is everything measured of one editor.
type Editor struct {
	Name         string      `json:"name"`
	Method       string      `json:"method"`
	Space        string      `json:"space"` // the latent space it moves: z, w or w+
	K            int         `json:"k"`
	Names        []string    `json:"names"`
	RCA          *float64    `json:"rca"` // learned methods only
	Effect       [][]float64 `json:"effect_per_unit_step"`
	Matched      []string    `json:"matched_factor"` // "" where none
	TargetEffect []*float64  `json:"target_effect"`
	Leakage      []*float64  `json:"leakage"`
	Steps        []*float64  `json:"step"`               // t that moves the matched factor by Move spreads
	TargetMove   []*float64  `json:"target_move"`        // achieved move of the matched factor, in spreads
	Identity     []*float64  `json:"identity_change"`    // mean |change| of the other factors, in spreads
	MeanEffect   *float64    `json:"mean_target_effect"` // over matched directions
	MeanLeakage  *float64    `json:"mean_leakage"`
	MeanIdentity *float64    `json:"mean_identity_change"`
	// ClassKept is, with Options.Classifier, the fraction of the identity
	// latents whose class survives the same edit; MeanClassKept its mean.
	ClassKept     []*float64                   `json:"class_kept,omitempty"`
	MeanClassKept *float64                     `json:"mean_class_kept,omitempty"`
	Matches       int                          `json:"matched_directions"`
	Commutativity *evaluate.CommutativityError `json:"commutativity"`
	Frechet       float64                      `json:"frechet_edited"` // oracle-feature FD of edited samples to real images
	HeatMap       string                       `json:"heat_map"`
	Traversal     string                       `json:"traversal"`
}

// Results is the whole study; it is written as metrics.json.
type Results struct {
	Model          string             `json:"model"`
	Dataset        string             `json:"dataset"`
	Kind           string             `json:"kind"`
	OracleR2       map[string]float64 `json:"oracle_r2"`
	OracleSteps    int                `json:"oracle_steps"`
	Factors        []string           `json:"factors"`
	FrechetSamples float64            `json:"frechet_samples"` // unedited samples to real images
	FrechetReal    float64            `json:"frechet_real"`    // two sets of real images: the floor
	Editors        []*Editor          `json:"editors"`
	Sequences      []string           `json:"sequence_grids"`
	SequenceCols   []string           `json:"sequence_factors"` // the grids' columns after the original
	Chart          string             `json:"commutativity_chart"`
	Options        Options            `json:"options"`
	Links          []Link             `json:"-"`

	Quality *evaluate.Quality `json:"quality,omitempty"` // Options.Quality
}

// Run measures the named editors of ws (all of them if names is empty)
// with the model's oracle, names matched directions when rename is set and
// the editor is not a shipped one, and writes index.html, metrics.json and
// the PNGs into out.
func Run(ws *workspace.Workspace, names []string, orc *evaluate.Oracle, out string, rename bool, opt Options) (*Results, error) {
	opt.defaults()
	if len(names) == 0 {
		names = ws.Editors()
		// Rows in the study's order: learned families, then the peers.
		rank := func(n string) int {
			for i, m := range []string{"linear", "warped", "curvilinear", "potential", "ganspace", "sefa", "interfacegan"} {
				if n == m {
					return i
				}
			}
			return 7
		}
		sort.SliceStable(names, func(i, j int) bool { return rank(names[i]) < rank(names[j]) })
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("study: no editors for %s: run discover first", ws.Model.Dir)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	m := ws.Model
	model := m.Dir
	if ws.Shipped != "" {
		model = filepath.Base(ws.Work) // the embedded model's name, not its cache folder
	}
	res := &Results{Model: model, Dataset: m.Info.Dataset, Kind: m.Info.Kind, OracleR2: orc.R2, OracleSteps: orc.Steps,
		Factors: orc.Factors, Quality: opt.Quality, Options: opt, Links: opt.Links}
	bar := progress.New(opt.Log, len(names)+2, "study "+filepath.Base(ws.Work), opt.JSON)
	real, err := realFeatures(m, orc, opt.QualityN)
	if err != nil {
		return nil, err
	}
	samples, err := featuresOf(m, orc, m.Latents(5150, opt.QualityN))
	if err != nil {
		return nil, err
	}
	if res.FrechetSamples, err = evaluate.Frechet(samples, real[:len(real)/2]); err != nil {
		return nil, err
	}
	if res.FrechetReal, err = evaluate.Frechet(real[len(real)/2:], real[:len(real)/2]); err != nil {
		return nil, err
	}
	zs := m.Latents(31337, opt.N)
	before, err := evaluate.ReadFactors(m, orc, zs)
	if err != nil {
		return nil, err
	}
	var classes []int
	if opt.Classifier != nil {
		if classes, err = evaluate.Classes(m, opt.Classifier, zs); err != nil {
			return nil, err
		}
	}
	bar.Set(1, nil)
	editors := map[string]edit.Editor{}
	models := map[string]*generator.Model{}
	for i, name := range names {
		e, dir, err := ws.LoadEditor(name)
		if err != nil {
			return nil, err
		}
		// Each editor is measured in its own space on the same pictures:
		// seeds lift to the picture they draw in z (to float error), so the
		// factors read before the edits are shared.
		me, err := ws.ModelFor(e)
		if err != nil {
			return nil, err
		}
		ezs := zs
		if me != m {
			ezs = me.Latents(31337, opt.N)
		}
		r, err := measure(me, e, orc, name, dir, out, real[:len(real)/2], ezs, before, classes, opt)
		if err != nil {
			return nil, fmt.Errorf("study: editor %s: %w", name, err)
		}
		r.Space = e.Space()
		models[name] = me
		if rename && !ws.IsShipped(dir) {
			if err := edit.Rename(dir, r.Names); err != nil {
				return nil, err
			}
		}
		editors[name] = e
		res.Editors = append(res.Editors, r)
		bar.Set(i+2, nil)
	}
	res.SequenceCols = sequenceFactors(res.Factors)
	if err := sequenceGrids(models, res, editors, out, opt); err != nil {
		return nil, err
	}
	if err := commutativityChart(res, out); err != nil {
		return nil, err
	}
	bar.Set(len(names)+2, nil)
	bar.Finish()
	raw, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("study: encoding metrics: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(out, "metrics.json"), append(raw, '\n'), atomicfile.DefaultPerm); err != nil {
		return nil, err
	}
	return res, writeHTML(filepath.Join(out, "index.html"), res)
}

// ClassesRead reports whether the study read classes (Options.Classifier):
// the page then shows the class-kept columns.
func (r *Results) ClassesRead() bool {
	for _, e := range r.Editors {
		if e.ClassKept != nil {
			return true
		}
	}
	return false
}

// measure runs every per-editor measurement.
// zs and before are the identity measurement's latents and the oracle's
// reading of them, shared by every editor; classes the classifier's
// classes of them (with Options.Classifier).
func measure(m *generator.Model, e edit.Editor, o *evaluate.Oracle, name, dir, out string, real [][]float64, zs [][]float32, before [][]float64, classes []int, opt Options) (*Editor, error) {
	r := &Editor{Name: name, Method: e.Method(), K: e.K(), RCA: rcaOf(dir)}
	ac, err := evaluate.MeasureAttributeChange(m, e, o, opt.N, 90210, opt.T)
	if err != nil {
		return nil, err
	}
	r.Effect = ac.Effect
	match := ac.Match()
	eff, leak := ac.EffectAndLeakage(match)
	r.Names = e.Names()
	r.Matched = make([]string, e.K())
	r.TargetEffect, r.Leakage = nullable(eff), nullable(leak)
	r.Steps, r.TargetMove, r.Identity = make([]*float64, e.K()), make([]*float64, e.K()), make([]*float64, e.K())
	if opt.Classifier != nil {
		r.ClassKept = make([]*float64, e.K())
	}
	var sumE, sumL, sumI, sumC float64
	for k, f := range match {
		if f < 0 || math.Abs(ac.Effect[k][f]) < minSpreadsPerStep*o.FactorScale(o.Factors[f]) {
			r.TargetEffect[k], r.Leakage[k] = nil, nil
			continue // too weak to call it this factor's direction
		}
		r.Matched[k] = o.Factors[f]
		if e.Method() != "interfacegan" { // its directions carry their labels already
			r.Names[k] = o.Factors[f]
		}
		t := stepFor(ac.Effect[k][f], opt.Move*o.FactorScale(o.Factors[f]), opt.MaxT)
		moved, nuis, err := evaluate.Identity(m, e, o, zs, before, k, f, t)
		if err != nil {
			return nil, err
		}
		tt := float64(t)
		r.Steps[k], r.TargetMove[k], r.Identity[k] = &tt, &moved, &nuis
		if opt.Classifier != nil {
			kept, err := evaluate.ClassKept(m, e, opt.Classifier, zs, classes, k, t)
			if err != nil {
				return nil, err
			}
			r.ClassKept[k] = &kept
			sumC += kept
		}
		r.Matches++
		sumE += eff[k]
		sumL += leak[k]
		sumI += nuis
	}
	r.Names = edit.UniqueNames(r.Names)
	if r.Matches > 0 {
		n := float64(r.Matches)
		r.MeanEffect, r.MeanLeakage, r.MeanIdentity = ptr(sumE/n), ptr(sumL/n), ptr(sumI/n)
		if opt.Classifier != nil {
			r.MeanClassKept = ptr(sumC / n)
		}
	}
	if r.Commutativity, err = evaluate.MeasureCommutativity(m, e, o, m.Latents(424242, opt.CommLatents), opt.CommT, opt.CommT); err != nil {
		return nil, err
	}
	if r.Frechet, err = editedFrechet(m, e, o, real, opt); err != nil {
		return nil, err
	}
	r.HeatMap = name + "-attributes.png"
	rows := make([]string, e.K())
	for k := range rows {
		rows[k] = fmt.Sprintf("%d %s", k, r.Names[k])
	}
	// In spreads, so that hue factors (spread 0.29) and pose (0.58) read alike.
	spreads := make([][]float64, e.K())
	for k := range spreads {
		spreads[k] = make([]float64, len(o.Factors))
		for f, fn := range o.Factors {
			spreads[k][f] = ac.Effect[k][f] / o.FactorScale(fn)
		}
	}
	if err := figure.HeatMap(filepath.Join(out, r.HeatMap), name+": oracle change per unit step, in factor spreads", rows, o.Factors, spreads, 0); err != nil {
		return nil, err
	}
	r.Traversal = name + "-traversal.png"
	if err := traversal(filepath.Join(out, r.Traversal), m, e, rows, m.Latent(opt.Seeds[0]), opt.MaxT/2, 9); err != nil {
		return nil, err
	}
	return r, nil
}

// minSpreadsPerStep is the weakest effect (factor spreads per unit step)
// that earns a direction its matched factor's name: below it, a step of
// MaxT moves the factor by less than about half a spread.
const minSpreadsPerStep = 0.1

// traversal draws one labelled row per direction, t from −maxT to +maxT
// over cols columns (the middle one is the original).
func traversal(path string, m *generator.Model, e edit.Editor, rows []string, z []float32, maxT float32, cols int) error {
	var lat []float32
	var colLabels []string
	for c := 0; c < cols; c++ {
		colLabels = append(colLabels, fmt.Sprintf("t=%+.1f", -maxT+2*maxT*float32(c)/float32(cols-1)))
	}
	var zs [][]float32
	var steps []edit.Step
	for k := 0; k < e.K(); k++ {
		for c := 0; c < cols; c++ {
			zs = append(zs, z)
			steps = append(steps, edit.Step{K: k, T: -maxT + 2*maxT*float32(c)/float32(cols-1)})
		}
	}
	edited, err := e.EditBatch(zs, steps)
	if err != nil {
		return err
	}
	for _, zz := range edited {
		lat = append(lat, zz...)
	}
	pix, err := m.GenerateFloats(lat, e.K()*cols)
	if err != nil {
		return err
	}
	h, w, c := m.ImageShape()
	imgs := generator.ToImages(pix, e.K()*cols, h, w, c)
	tiles := make([][]image.Image, e.K())
	for k := range tiles {
		tiles[k] = imgs[k*cols : (k+1)*cols]
	}
	return figure.LabelledGrid(path, rows, colLabels, tiles, max(1, 64/h))
}

// stepFor is the signed step that moves a factor by want along a direction
// with the given effect per unit step, kept within [0.5, maxT] in size.
func stepFor(effect, want float64, maxT float32) float32 {
	t := want / math.Max(math.Abs(effect), 1e-9)
	t = math.Max(0.5, math.Min(float64(maxT), t))
	if effect < 0 {
		t = -t
	}
	return float32(t)
}

// editedFrechet edits samples along a random direction each by a random
// step in [−MaxT/2, MaxT/2] and measures their distance to real images: do
// edits leave the image distribution?
func editedFrechet(m *generator.Model, e edit.Editor, o *evaluate.Oracle, real [][]float64, opt Options) (float64, error) {
	zs := m.Latents(8086, len(real))
	u := generator.Latents(8087, len(real), 2)
	steps := make([]edit.Step, len(zs))
	for i := range zs {
		steps[i] = edit.Step{K: int(math.Abs(float64(u[i][0]))*1000) % e.K(), T: float32(math.Tanh(float64(u[i][1]))) * opt.MaxT / 2}
	}
	edited, err := e.EditBatch(zs, steps)
	if err != nil {
		return 0, err
	}
	f, err := featuresOf(m, o, edited)
	if err != nil {
		return 0, err
	}
	return evaluate.Frechet(f, real)
}

func featuresOf(m *generator.Model, o *evaluate.Oracle, zs [][]float32) ([][]float64, error) {
	var flat []float32
	for _, z := range zs {
		flat = append(flat, z...)
	}
	pix, err := m.GenerateFloats(flat, len(zs))
	if err != nil {
		return nil, err
	}
	return o.Features(pix, len(zs))
}

// realFeatures reads 2n rendered images of the model's dataset (a seed no
// training used) with the oracle.
func realFeatures(m *generator.Model, o *evaluate.Oracle, n int) ([][]float64, error) {
	ds, err := m.Info.OpenData(dataset.Options{N: 2 * n, Seed: 777})
	if err != nil {
		return nil, err
	}
	idx := make([]int, ds.Len())
	for i := range idx {
		idx[i] = i
	}
	pix, _, err := dataset.Batch(ds, idx)
	if err != nil {
		return nil, err
	}
	return o.Features(pix, len(idx))
}

// sequenceGrids draws, per seed, rows = editors and columns = the original
// then each res.SequenceCols edit applied on top of the previous ones. A
// method without a direction for a factor gets a grey tile there (and the
// edit is skipped for the rest of its row).
func sequenceGrids(models map[string]*generator.Model, res *Results, editors map[string]edit.Editor, out string, opt Options) error {
	cols := []string{"original"}
	for _, f := range res.SequenceCols {
		cols = append(cols, "+"+strings.ReplaceAll(f, "_", " "))
	}
	// Seed i's latent in each editor's space (the same picture).
	zsOf := func(m *generator.Model) [][]float32 {
		zs := make([][]float32, len(opt.Seeds))
		for i, seed := range opt.Seeds {
			zs[i] = m.Latent(seed)
		}
		return zs
	}
	zss := make([][][]float32, len(res.Editors))
	// Per editor, its steps (the same for every seed), which columns they
	// fill, and the edited latents of every seed in one batch.
	steps := make([][]edit.Step, len(res.Editors))
	have := make([][]bool, len(res.Editors))
	paths := make([][][][]float32, len(res.Editors))
	for j, r := range res.Editors {
		have[j] = []bool{true}
		for _, f := range res.SequenceCols {
			k := indexOf(r.Matched, f)
			if k >= 0 {
				steps[j] = append(steps[j], edit.Step{K: k, T: float32(*r.Steps[k])})
			}
			have[j] = append(have[j], k >= 0)
		}
		zss[j] = zsOf(models[r.Name])
		seqs := make([][]edit.Step, len(zss[j]))
		for i := range seqs {
			seqs[i] = steps[j]
		}
		var err error
		if paths[j], err = edit.Apply(editors[r.Name], zss[j], seqs); err != nil {
			return err
		}
	}
	for i, seed := range opt.Seeds {
		var rows []string
		var tiles [][]image.Image
		for j, r := range res.Editors {
			steps, have := steps[j], have[j]
			m := models[r.Name]
			h, w, c := m.ImageShape()
			lat := append([]float32(nil), zss[j][i]...)
			for _, s := range paths[j][i] {
				lat = append(lat, s...)
			}
			pix, err := m.GenerateFloats(lat, len(steps)+1)
			if err != nil {
				return err
			}
			imgs := generator.ToImages(pix, len(steps)+1, h, w, c)
			row := make([]image.Image, len(have))
			j := 0
			for i, ok := range have {
				if ok {
					row[i] = imgs[j]
					j++
				}
			}
			rows = append(rows, r.Name)
			tiles = append(tiles, row)
		}
		name := fmt.Sprintf("sequence-seed%d.png", seed)
		if err := figure.LabelledGrid(filepath.Join(out, name), rows, cols, tiles, 3); err != nil {
			return err
		}
		res.Sequences = append(res.Sequences, name)
	}
	return nil
}

func commutativityChart(res *Results, out string) error {
	var names []string
	var lat, img, att []float64
	for _, r := range res.Editors {
		names = append(names, r.Name)
		lat = append(lat, r.Commutativity.Latent)
		img = append(img, r.Commutativity.Image)
		att = append(att, r.Commutativity.AttributeMean)
	}
	res.Chart = "commutativity.png"
	// Log scale: float rounding (1e-8) and real non-commutativity (1e-2)
	// must both be visible for the ordering to be read off the chart.
	const floor = 1e-9
	return figure.BarPanels(filepath.Join(out, res.Chart), "mean error, log scale (lower is better)", []figure.Panel{
		{Title: "latent ‖Δz‖/‖z‖", Names: names, Values: lat, LogFloor: floor},
		{Title: "image mean |Δpixel|", Names: names, Values: img, LogFloor: floor},
		{Title: "attribute mean |Δoracle|", Names: names, Values: att, LogFloor: floor},
	})
}

// rcaOf reads the reconstructor accuracy that discover stored in the
// editor's notes; closed-form and supervised editors have none.
func rcaOf(dir string) *float64 {
	raw, err := os.ReadFile(filepath.Join(dir, edit.SpecFile))
	if err != nil {
		return nil
	}
	spec, err := edit.ParseSpec(raw)
	if err != nil {
		return nil
	}
	if v, ok := spec.Notes["rca"].(float64); ok {
		return &v
	}
	return nil
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func ptr(v float64) *float64 { return &v }

// nullable maps NaN and ±Inf (JSON cannot hold them) to null.
func nullable(v []float64) []*float64 {
	out := make([]*float64, len(v))
	for i := range v {
		if !math.IsNaN(v[i]) && !math.IsInf(v[i], 0) {
			out[i] = &v[i]
		}
	}
	return out
}
