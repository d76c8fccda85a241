package evaluate

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"

	"latentedit/dataset"
	"latentedit/generator"
	"latentedit/internal/progress"
)

// A Judge reads images for the quality metrics: one feature vector per
// image (the space of the Fréchet distance and of the k-NN manifolds) and
// its reading of the named factors. Samples and real images both pass
// through the same judge, so its own errors touch both sides alike. The
// oracle is the judge of datasets with continuous factors, the Classifier
// of datasets with classes.
type Judge interface {
	FactorNames() []string
	Read(pix []float32, n int) (features, factors [][]float64, err error)
}

// categorical names judge factors that are class indices: their marginals
// are compared as class rates (Modes), not by a Wasserstein distance.
var categorical = map[string]bool{"label": true}

// Quality is how close a generator's samples are to its data, judged in
// the oracle's (or classifier's) reading of images (issue #15, item 2). It
// is written as quality.json.
//
// The data side is rendered (or held-out) images read by the same judge as
// the samples, not the dataset's labels: the judge's reading of a perfect
// generator's images would then be the reading of the data, whatever the
// judge's own bias. How far that reading is from the labels is reported
// beside it (W1Judge, Modes' Truth), so a judge error can be told from a
// generator error.
type Quality struct {
	Model   string    `json:"model"`
	Dataset string    `json:"dataset"`
	Kind    string    `json:"kind"` // gan or vae
	Judge   JudgeInfo `json:"judge"`
	N       int       `json:"n"` // samples, and images in each real set
	// SampleSeed is the first latent seed (latents SampleSeed…+N−1);
	// DataSeed the seed of the 2N real images (the test split's first 2N
	// for datasets with splits).
	SampleSeed int64 `json:"sample_seed"`
	DataSeed   int64 `json:"data_seed"`

	// Frechet is the Fréchet distance of judge features between the samples
	// and the first real set; FrechetReal the same between the two real
	// sets (what a perfect generator would score at this N); FrechetRatio
	// the first over the second.
	Frechet      float64 `json:"frechet"`
	FrechetReal  float64 `json:"frechet_real_vs_real"`
	FrechetRatio float64 `json:"frechet_ratio"`

	// Precision and Recall are PrecisionRecall's (k-NN manifolds) of the
	// samples against the first real set; PrecisionReal and RecallReal of
	// the second real set against the first (the values a perfect generator
	// would reach at this N and K).
	K             int     `json:"k"`
	Precision     float64 `json:"precision"`
	Recall        float64 `json:"recall"`
	PrecisionReal float64 `json:"precision_real_vs_real"`
	RecallReal    float64 `json:"recall_real_vs_real"`

	Factors []FactorQuality `json:"factors"`
	Modes   []Mode          `json:"modes"`

	// Artefacts is the rate of fundus samples whose optic disc count is not
	// one (measured by package pseudocase's segmenter; nil elsewhere).
	Artefacts *Artefacts `json:"artefacts,omitempty"`
	// ReconstructionPSNR is a VAE's mean PSNR (dB, pixels on [0, 1]) of
	// decode(encode(x)) over the first real set; nil for a GAN.
	ReconstructionPSNR *float64 `json:"reconstruction_psnr_db,omitempty"`

	Checks []Check `json:"checks"` // the targets of issue #15 (CheckTargets)
	Pass   bool    `json:"pass"`   // every check passed (false when there are none)
}

// JudgeInfo says who judged and how good the judge is.
type JudgeInfo struct {
	Kind  string `json:"kind"` // oracle or classifier
	Size  int    `json:"size"` // image side it reads (the model's)
	Steps int    `json:"steps"`
	// R2 is an oracle's held-out R² per factor; TestAccuracy a classifier's
	// accuracy on the dataset's test split.
	R2           map[string]float64 `json:"r2,omitempty"`
	TestAccuracy *float64           `json:"test_accuracy,omitempty"`
}

// FactorQuality compares one factor's marginals.
type FactorQuality struct {
	Name string `json:"name"`
	// Spread is the unit of W1: the factor's standard deviation in the
	// judge's reading of the data, or 1/√12 for a hue (a uniform hue's:
	// the linear deviation of a cyclic value depends on where it is cut).
	Spread     float64 `json:"spread"`
	DataMean   float64 `json:"data_mean"` // circular mean for hues
	SampleMean float64 `json:"sample_mean"`
	// W1 is the Wasserstein-1 distance between the samples' and the data's
	// marginals (circular for hues), in spreads; W1Real the same between the
	// two real sets (the sampling noise at this N); W1Judge between the
	// judge's reading of the data and the data's labels (the judge's own
	// distortion), nil without labels.
	W1      float64  `json:"w1_spreads"`
	W1Real  float64  `json:"w1_real_vs_real_spreads"`
	W1Judge *float64 `json:"w1_judge_vs_truth_spreads"`
}

// Mode is the rate of one bin of a factor (a hue range, a lesion present,
// a digit) among samples and data.
type Mode struct {
	Group  string  `json:"group"`
	Bin    string  `json:"bin"`
	Data   float64 `json:"data"`   // among the first real set, read by the judge
	Sample float64 `json:"sample"` // among the samples, read by the judge
	// Truth is the rate by the dataset's labels of the same real images
	// (nil without labels): Data − Truth is the judge's error on the bin.
	Truth *float64 `json:"truth"`
	// RelDiff is (Sample − Data)/Data; nil when Data is 0.
	RelDiff *float64 `json:"rel_diff"`
}

// Artefacts counts images where the fundus segmenter finds a number of
// optic discs other than one.
type Artefacts struct {
	// Judge describes the segmenter (its held-out disc Dice).
	Judge string `json:"judge"`
	// MinArea is the smallest disc component counted, in pixels.
	MinArea int `json:"min_area_px"`
	// Sample and Data are the rates of images with ≠ 1 disc among the
	// samples and the first real set (the segmenter's own error rate).
	Sample float64 `json:"sample_rate"`
	Data   float64 `json:"data_rate"`
	// SampleCounts and DataCounts hold how many images have 0, 1, 2 and
	// 3 or more discs.
	SampleCounts [4]int `json:"sample_disc_counts"`
	DataCounts   [4]int `json:"data_disc_counts"`
}

// QualityOptions size a quality measurement. Zero fields take the defaults.
type QualityOptions struct {
	N          int   // samples, and images per real set (1000)
	K          int   // neighbours of the k-NN manifolds (3, the paper's)
	SampleSeed int64 // first latent seed (5150, the study's)
	DataSeed   int64 // seed of the rendered real images (777, a seed no training used)
	Log        io.Writer
	JSON       bool // progress as JSON lines
}

func (o *QualityOptions) defaults() error {
	o.N, o.K = cmp.Or(o.N, 1000), cmp.Or(o.K, 3)
	o.SampleSeed, o.DataSeed = cmp.Or(o.SampleSeed, 5150), cmp.Or(o.DataSeed, 777)
	if o.N <= o.K || o.K < 1 {
		return fmt.Errorf("quality: need k ≥ 1 and n > k, got n %d, k %d", o.N, o.K)
	}
	return nil
}

// QualityImages are the images one measurement reads: N samples and 2N real
// images with their labels. Package pseudocase reads the same images for the
// artefact rate, so they are rendered once.
type QualityImages struct {
	N       int
	Samples []float32   // [N, H, W, C] in [−1, 1], latents SampleSeed…
	Real    []float32   // [2N, H, W, C]: the first N are the reference set, the rest the second real set
	Truth   [][]float64 // the dataset's labels of the 2N real images
	Factors []string    // names of Truth's columns
}

// quantum is how many images the progress bar advances by: a multiple of
// ReadChunk, so chunked rendering and reading see the same batches as in
// one call.
const quantum = 8 * ReadChunk

// RenderQualityImages renders N samples of m (latents SampleSeed…) and 2N
// real images of its dataset at its resolution.
func RenderQualityImages(m *generator.Model, opt QualityOptions) (*QualityImages, error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	n := opt.N
	ds, err := m.Info.OpenData(dataset.Options{N: 2 * n, Seed: opt.DataSeed, Split: "test"})
	if err != nil {
		return nil, err
	}
	if ds.Len() < 2*n {
		return nil, fmt.Errorf("quality: dataset %s has %d images, %d needed (2n)", ds.Name(), ds.Len(), 2*n)
	}
	if h, w, c := ds.Shape(); h != m.Info.Height || w != m.Info.Width || c != m.Info.Channels {
		return nil, fmt.Errorf("quality: dataset %s images are %dx%dx%d, model %s makes %dx%dx%d", ds.Name(), h, w, c, m.Dir, m.Info.Height, m.Info.Width, m.Info.Channels)
	}
	im := &QualityImages{N: n, Factors: ds.Factors()}
	bar := progress.New(opt.Log, 3*n, "quality: render", opt.JSON)
	zs := m.Latents(opt.SampleSeed, n)
	for s := 0; s < n; s += quantum {
		pix, err := m.GenerateChunked(zs[s:min(n, s+quantum)], ReadChunk)
		if err != nil {
			return nil, err
		}
		im.Samples = append(im.Samples, pix...)
		bar.Set(min(n, s+quantum), nil)
	}
	for s := 0; s < 2*n; s += quantum {
		pix, lab, err := dataset.Batch(ds, seqFrom(s, min(2*n, s+quantum)))
		if err != nil {
			return nil, err
		}
		im.Real = append(im.Real, pix...)
		nf := len(im.Factors)
		for i := 0; i < len(lab)/max(nf, 1) && nf > 0; i++ {
			im.Truth = append(im.Truth, float64s(lab[i*nf:(i+1)*nf]))
		}
		bar.Set(n+min(2*n, s+quantum), nil)
	}
	bar.Finish()
	return im, nil
}

func seqFrom(a, b int) []int {
	s := make([]int, b-a)
	for i := range s {
		s[i] = a + i
	}
	return s
}

// MeasureQuality reads the images with the judge and computes every metric
// but the artefact rate (pseudocase adds it), then checks the targets.
func MeasureQuality(m *generator.Model, j Judge, im *QualityImages, opt QualityOptions) (*Quality, error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	n := im.N
	h, w, c := m.ImageShape()
	sz := h * w * c
	if n <= opt.K || len(im.Samples) != n*sz || len(im.Real) != 2*n*sz {
		return nil, fmt.Errorf("quality: %d sample and %d real values for n %d images of %d (k %d)", len(im.Samples), len(im.Real), n, sz, opt.K)
	}
	q := &Quality{Dataset: m.Info.Dataset, Kind: m.Info.Kind, Judge: judgeInfo(j), N: n, K: opt.K,
		SampleSeed: opt.SampleSeed, DataSeed: opt.DataSeed, Factors: []FactorQuality{}, Modes: []Mode{}} // [] not null in JSON
	bar := progress.New(opt.Log, 3*n, "quality: read", opt.JSON)
	read := func(pix []float32, count, done int) (feat, fac [][]float64, err error) {
		for s := 0; s < count; s += quantum {
			e := min(count, s+quantum)
			f, v, err := j.Read(pix[s*sz:e*sz], e-s)
			if err != nil {
				return nil, nil, err
			}
			feat, fac = append(feat, f...), append(fac, v...)
			bar.Set(done+e, nil)
		}
		return feat, fac, nil
	}
	fs, vs, err := read(im.Samples, n, 0)
	if err != nil {
		return nil, err
	}
	fr, vr, err := read(im.Real, 2*n, n)
	if err != nil {
		return nil, err
	}
	bar.Finish()
	fa, fb := fr[:n], fr[n:]
	if q.Frechet, err = Frechet(fs, fa); err != nil {
		return nil, err
	}
	if q.FrechetReal, err = Frechet(fb, fa); err != nil {
		return nil, err
	}
	q.FrechetRatio = q.Frechet / math.Max(q.FrechetReal, 1e-12)
	if q.Precision, q.Recall, err = PrecisionRecall(fa, fs, opt.K); err != nil {
		return nil, err
	}
	if q.PrecisionReal, q.RecallReal, err = PrecisionRecall(fa, fb, opt.K); err != nil {
		return nil, err
	}
	for f, name := range j.FactorNames() {
		var lab []float64 // the labels of the first real set, if the dataset has this factor
		if t := slices.Index(im.Factors, name); t >= 0 && len(im.Truth) >= n {
			lab = column(im.Truth[:n], t)
		}
		sample, data, second := column(vs, f), column(vr[:n], f), column(vr[n:], f)
		if !categorical[name] {
			q.Factors = append(q.Factors, compareFactor(name, sample, data, second, lab))
		}
		q.Modes = append(q.Modes, modes(name, sample, data, lab)...)
	}
	if m.Info.Kind == "vae" {
		psnr, err := ReconstructionPSNR(m, im.Real[:n*sz], n)
		if err != nil {
			return nil, err
		}
		q.ReconstructionPSNR = &psnr
	}
	q.CheckTargets()
	return q, nil
}

func judgeInfo(j Judge) JudgeInfo {
	switch j := j.(type) {
	case *Oracle:
		return JudgeInfo{Kind: "oracle", Size: j.Size, Steps: j.Steps, R2: j.R2}
	case *Classifier:
		acc := j.TestAccuracy
		return JudgeInfo{Kind: "classifier", Size: j.Size, Steps: j.Steps, TestAccuracy: &acc}
	}
	return JudgeInfo{Kind: fmt.Sprintf("%T", j)}
}

func column(rows [][]float64, j int) []float64 {
	out := make([]float64, len(rows))
	for i, r := range rows {
		out[i] = r[j]
	}
	return out
}

// compareFactor compares one factor's marginals: samples and the second
// real set against the data, the data's reading against its labels (lab,
// empty without labels).
func compareFactor(name string, sample, data, second, lab []float64) FactorQuality {
	w1, mean := Wasserstein1, meanOf
	spread := 1 / math.Sqrt(12)
	if cyclic[name] {
		w1, mean = CircularWasserstein1, circularMean
	} else {
		spread = math.Max(stdOf(data), 1e-12)
	}
	fq := FactorQuality{Name: name, Spread: spread, DataMean: mean(data), SampleMean: mean(sample),
		W1: w1(sample, data) / spread, W1Real: w1(second, data) / spread}
	if len(lab) > 0 {
		v := w1(data, lab) / spread
		fq.W1Judge = &v
	}
	return fq
}

func meanOf(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func stdOf(v []float64) float64 {
	m, s := meanOf(v), 0.0
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(v)))
}

// circularMean is the mean direction of hues in [0, 1) (0 when they
// cancel out).
func circularMean(v []float64) float64 {
	var c, s float64
	for _, x := range v {
		c += math.Cos(2 * math.Pi * x)
		s += math.Sin(2 * math.Pi * x)
	}
	h := math.Atan2(s, c) / (2 * math.Pi)
	if h < 0 {
		h++
	}
	return h
}

// A binning splits a factor's values into named bins; bin returns −1 for a
// value in none (a rate of one condition has one bin).
type binning struct {
	group  string
	labels []string
	bin    func(v float64) int
}

// Thresholds of the fundus mode rates, from the renderer's definitions
// (dataset/fundus Draw): a drawn detachment has extent ≥ 0.2, so 0.1 is
// halfway between none and the least there is; a haemorrhage count reads as
// present from 0.5, the rounding point of one blot; the cup-to-disc ratio
// is drawn uniformly in [0.2, 0.8] and 0.6 is the usual clinical line for a
// glaucoma suspect (a third of the data lies above it).
const (
	DetachmentPresent  = 0.1
	HaemorrhagePresent = 0.5
	GlaucomatousCup    = 0.6
	maxHaemorrhages    = 6 // fundus.Draw draws 0–6
	hueBins            = 8
	skinBins           = 5
)

// binnings returns the mode bins of a factor; data (the judge's reading of
// the data) sets the quantile edges of skin tone and the classes of a
// label. Factors without modes return none.
func binnings(name string, data []float64) []binning {
	flag := func(group, label string, in func(float64) bool) binning {
		return binning{group, []string{label}, func(v float64) int {
			if in(v) {
				return 0
			}
			return -1
		}}
	}
	switch name {
	case "background", "hair_colour":
		group := map[string]string{"background": "background hue", "hair_colour": "hair hue"}[name]
		labels := make([]string, hueBins)
		for b := range labels {
			labels[b] = fmt.Sprintf("%.3f–%.3f", float64(b)/hueBins, float64(b+1)/hueBins)
		}
		return []binning{{group, labels, func(v float64) int {
			return min(hueBins-1, int(math.Floor((v-math.Floor(v))*hueBins)))
		}}}
	case "skin_tone":
		// Quantile bins of the data: each holds a fifth of it, whatever
		// the oracle's scale, so a missing tone shows as an empty fifth.
		sorted := slices.Sorted(slices.Values(data))
		edges := make([]float64, skinBins-1)
		labels := make([]string, skinBins)
		lo := "min"
		for b := range edges {
			edges[b] = sorted[(b+1)*len(sorted)/skinBins]
			labels[b] = fmt.Sprintf("%s–%.3f", lo, edges[b])
			lo = fmt.Sprintf("%.3f", edges[b])
		}
		labels[skinBins-1] = lo + "–max"
		return []binning{{"skin tone (data fifths)", labels, func(v float64) int {
			b, _ := slices.BinarySearch(edges, v)
			return b
		}}}
	case "detachment":
		return []binning{flag("detachment present", fmt.Sprintf("extent > %g", DetachmentPresent), func(v float64) bool { return v > DetachmentPresent })}
	case "haemorrhages":
		labels := make([]string, maxHaemorrhages+1)
		for b := range labels {
			labels[b] = fmt.Sprint(b)
		}
		return []binning{
			flag("haemorrhages present", fmt.Sprintf("count ≥ %g", HaemorrhagePresent), func(v float64) bool { return v >= HaemorrhagePresent }),
			{"haemorrhage count", labels, func(v float64) int { return max(0, min(maxHaemorrhages, int(math.Round(v)))) }},
		}
	case "cup_to_disc":
		return []binning{flag("glaucomatous cup", fmt.Sprintf("cup/disc ≥ %g", GlaucomatousCup), func(v float64) bool { return v >= GlaucomatousCup })}
	case "label":
		classes := 0
		for _, v := range data {
			classes = max(classes, int(v)+1)
		}
		labels := make([]string, classes)
		for b := range labels {
			labels[b] = fmt.Sprint(b)
		}
		return []binning{{"class", labels, func(v float64) int { return int(v) }}}
	}
	return nil
}

// modes returns the mode rates of one factor.
func modes(name string, sample, data, lab []float64) []Mode {
	var out []Mode
	for _, b := range binnings(name, data) {
		rs, rd, rt := rates(b, sample), rates(b, data), rates(b, lab)
		for i, label := range b.labels {
			m := Mode{Group: b.group, Bin: label, Data: rd[i], Sample: rs[i]}
			if len(lab) > 0 {
				m.Truth = ptr(rt[i])
			}
			if rd[i] > 0 {
				m.RelDiff = ptr((rs[i] - rd[i]) / rd[i])
			}
			out = append(out, m)
		}
	}
	return out
}

func rates(b binning, v []float64) []float64 {
	count := make([]int, len(b.labels))
	for _, x := range v {
		if i := b.bin(x); i >= 0 && i < len(count) {
			count[i]++
		}
	}
	r := make([]float64, len(count))
	for i, c := range count {
		r[i] = float64(c) / float64(len(v))
	}
	return r
}

func ptr(v float64) *float64 { return &v }

// ReconstructionPSNR is a VAE's mean PSNR in dB (pixels on [0, 1]) between
// n images (flat [n, H, W, C] in [−1, 1]) and the decoding of their
// posterior means, in fixed chunks of ReadChunk.
func ReconstructionPSNR(m *generator.Model, pix []float32, n int) (float64, error) {
	h, w, c := m.ImageShape()
	sz := h * w * c
	if n < 1 || len(pix) != n*sz {
		return 0, fmt.Errorf("psnr: %d values for %d images of %d", len(pix), n, sz)
	}
	total := 0.0
	buf := make([]float32, ReadChunk*sz)
	for s := 0; s < n; s += ReadChunk {
		e := min(n, s+ReadChunk)
		clear(buf)
		copy(buf, pix[s*sz:e*sz])
		z, err := m.EncodeFloats(buf, ReadChunk)
		if err != nil {
			return 0, err
		}
		rec, err := m.GenerateFloats(z, ReadChunk)
		if err != nil {
			return 0, err
		}
		for i := 0; i < e-s; i++ {
			mse := 0.0
			for k := i * sz; k < (i+1)*sz; k++ {
				d := float64(rec[k]-buf[k]) / 2 // [−1, 1] → [0, 1]
				mse += d * d
			}
			mse /= float64(sz)
			total += 10 * math.Log10(1/math.Max(mse, 1e-10))
		}
	}
	return total / float64(n), nil
}
