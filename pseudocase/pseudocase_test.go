package pseudocase

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"latentedit/dataset"
	"latentedit/dataset/fundus"
	"latentedit/edit"
	"latentedit/engine"
	"latentedit/evaluate"
	"latentedit/train"
	"latentedit/train/killtest"
	"latentedit/workspace"
)

func TestParseRequest(t *testing.T) {
	r, err := ParseRequest("detachment:0.6@45,haemorrhage:3, cup:0.7")
	if err != nil {
		t.Fatal(err)
	}
	if len(r) != 3 || r[0].Kind != Detachment || !r[0].HasAngle || r[0].Angle != 45 || r[1].Amount != 3 || r[2].Kind != Cup {
		t.Fatalf("parsed %+v", r)
	}
	tg := r.Targets()
	if math.Abs(tg["detachment_cos"]-0.6*math.Sqrt(0.5)) > 1e-12 || math.Abs(tg["detachment_sin"]-0.6*math.Sqrt(0.5)) > 1e-12 || tg[Haemorrhage] != 3 {
		t.Errorf("targets %v", tg)
	}
	if again, err := ParseRequest(r.String()); err != nil || again.String() != r.String() {
		t.Errorf("round trip %q: %v %v", r.String(), again, err)
	}
	if plus, err := ParseRequest("detachment:0.6@45+haemorrhage:3+cup:0.7"); err != nil || plus.String() != r.String() {
		t.Errorf("a combination joined by +: %v %v, want %v", plus, err, r)
	}
	if r, _ := ParseRequest("detachment:0.5@-90"); r[0].Angle != 270 {
		t.Errorf("angle -90 normalised to %v, want 270", r[0].Angle)
	}
	bad := map[string]string{
		"":                     "empty",
		"detachment":           "kind:amount",
		"tumour:1":             "unknown lesion",
		"detachment:1.5":       "out of (0, 1]",
		"detachment:0":         "out of (0, 1]",
		"detachment:x":         "not a number",
		"detachment:0.5@north": "not a number of degrees",
		"haemorrhage:2.5":      "whole number",
		"haemorrhage:9":        "whole number",
		"haemorrhage:2@30":     "only a detachment",
		"cup:0.95":             "out of [0.2, 0.9]",
		"cup:0.5,glaucoma:0.6": "given twice",
		"detachment:NaN":       "not a number",
		"detachment:0.5,":      "kind:amount",
		"cup:0.5+":             "kind:amount",
	}
	for spec, want := range bad {
		if _, err := ParseRequest(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRequest(%q) = %v, want an error with %q", spec, err, want)
		}
	}
}

func TestParseShard(t *testing.T) {
	for _, bad := range []string{"1", "a/b", "2/2", "-1/2", "0/0", "1/-3", "0/1/2"} {
		if _, err := ParseShard(bad); err == nil || !strings.Contains(err.Error(), "--shard") {
			t.Errorf("ParseShard(%q) = %v, want an error", bad, err)
		}
	}
	// The parts cover 0..n-1 in order, each case once, for any n and N.
	for _, n := range []int{1, 5, 17, 500} {
		for parts := 1; parts <= 7; parts++ {
			next := 0
			for i := 0; i < parts; i++ {
				s, err := ParseShard(strings.Join([]string{itoa(i), itoa(parts)}, "/"))
				if err != nil {
					t.Fatal(err)
				}
				lo, hi := s.Range(n)
				if lo != next || hi < lo {
					t.Fatalf("n %d, %d/%d: range [%d,%d) after %d", n, i, parts, lo, hi, next)
				}
				next = hi
			}
			if next != n {
				t.Fatalf("n %d in %d parts covers %d", n, parts, next)
			}
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestInvert(t *testing.T) {
	a := [][]float64{{2, 1, 0}, {1, 3, 1}, {0, 1, 4}}
	inv, err := invert(a)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		for j := range a {
			var s float64
			for k := range a {
				s += a[i][k] * inv[k][j]
			}
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(s-want) > 1e-12 {
				t.Fatalf("A·A⁻¹[%d][%d] = %v", i, j, s)
			}
		}
	}
	if _, err := invert([][]float64{{1, 2}, {2, 4}}); err == nil {
		t.Error("singular matrix inverted")
	}
}

func TestSegmenterLearnsAndRefusesCorruptFiles(t *testing.T) {
	be, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	opt := SegmenterOptions{N: 16, Held: 8, Steps: 60, Batch: 2, Width: 4, Levels: 2, Blocks: 1, Loss: LossBCE, Seed: 3, LR: 5e-3}
	s, err := TrainSegmenter(be, opt)
	if err != nil {
		t.Fatal(err)
	}
	losses := s.History.Series("loss", "").Y
	first, last := mean(losses[:5]), mean(losses[len(losses)-5:])
	t.Logf("loss %.4f → %.4f; held-out Dice %v", first, last, s.Dice)
	if !(last < 0.7*first) {
		t.Errorf("loss did not fall: first steps %.4f, last steps %.4f", first, last)
	}
	if len(s.Dice) != numChannels {
		t.Errorf("held-out Dice %v, want one per channel", s.Dice)
	}

	dir := t.TempDir()
	if err := s.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := LoadSegmenter(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	pix, _, _, err := renderSet(2, 64, 9)
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := s.Predict(pix, 2)
	p2, err := back.Predict(pix, 2)
	if err != nil || !equalStructure(p1, p2) {
		t.Fatalf("loaded segmenter predicts differently (err %v)", err)
	}

	ckpt := filepath.Join(dir, SegmenterWeights)
	good, _ := os.ReadFile(ckpt)
	spec := filepath.Join(dir, SegmenterSpec)
	goodSpec, _ := os.ReadFile(spec)
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 0x40
	corrupt := []struct {
		name       string
		ckpt, spec []byte
		want       string
	}{
		{"flipped byte", flipped, goodSpec, "does not match"},
		{"truncated", good[:len(good)/3], goodSpec, "does not match"},
		{"empty", nil, goodSpec, "does not match"},
		{"kind", good, bytes.Replace(goodSpec, []byte(`"kind": "segmenter"`), []byte(`"kind": "oracle"`), 1), "field kind"},
		{"checksum field", good, bytes.Replace(goodSpec, []byte(`"weights_sha256": "`), []byte(`"weights_sha256": "0`), 1), "weights_sha256"},
		{"bad spec", good, []byte("{"), "segmenter.json"},
		{"wrong width", good, bytes.Replace(goodSpec, []byte(`"width": 4`), []byte(`"width": 5`), 1), "do not fit"},
		{"zero width", good, bytes.Replace(goodSpec, []byte(`"width": 4`), []byte(`"width": 0`), 1), "field width"},
		{"more levels", good, bytes.Replace(goodSpec, []byte(`"levels": 2`), []byte(`"levels": 3`), 1), "/segmenter/e3_down/weights missing"},
		{"fewer levels", good, bytes.Replace(goodSpec, []byte(`"levels": 2`), []byte(`"levels": 1`), 1), "/segmenter/e2_down/weights not in the network"},
		{"zero levels", good, bytes.Replace(goodSpec, []byte(`"levels": 2`), []byte(`"levels": 0`), 1), "field levels"},
		{"wrong blocks", good, bytes.Replace(goodSpec, []byte(`"blocks": 1`), []byte(`"blocks": 2`), 1), "do not fit"},
		{"too many blocks", good, bytes.Replace(goodSpec, []byte(`"blocks": 1`), []byte(`"blocks": 9`), 1), "field blocks"},
		{"format", good, bytes.Replace(goodSpec, []byte(`"format_version": 3`), []byte(`"format_version": 7`), 1), "format_version: 7, this build reads 3"},
		{"older format", good, bytes.Replace(goodSpec, []byte(`"format_version": 3`), []byte(`"format_version": 2`), 1), "older build's segmenter"},
	}
	for _, c := range corrupt {
		os.WriteFile(ckpt, c.ckpt, 0o644)
		os.WriteFile(spec, c.spec, 0o644)
		if _, err := LoadSegmenter(dir, be); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: LoadSegmenter = %v, want an error with %q", c.name, err, c.want)
		}
	}
}

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

func equalStructure(a, b []Structure) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].DiscX != b[i].DiscX || a[i].DiscY != b[i].DiscY {
			return false
		}
		for c := range a[i].Masks {
			for j := range a[i].Masks[c] {
				if a[i].Masks[c][j] != b[i].Masks[c][j] {
					return false
				}
			}
		}
	}
	return true
}

func TestDiscMaskCentredOnParams(t *testing.T) {
	p := fundus.Draw(rand.New(rand.NewPCG(4, 4)))
	m := DiscMask(p, 64)
	var sx, sy, n float64
	for j, v := range m {
		if v == 1 {
			sx += float64(j%64) + 0.5
			sy += float64(j/64) + 0.5
			n++
		}
	}
	if n < 20 || math.Hypot(sx/n-p.Disc.X*64, sy/n-p.Disc.Y*64) > 0.5 {
		t.Errorf("disc mask: %v pixels centred at (%.2f, %.2f), params (%.2f, %.2f)", n, sx/n, sy/n, p.Disc.X*64, p.Disc.Y*64)
	}
}

// throwawayTools are a run's tools on the embedded fundus GAN with a
// throw-away oracle, segmenter and linear editor (tests of bytes, not of
// quality); dirs are the editor's directions. Only haemorrhages and
// cup_to_disc get a named direction: calibration measures just those, which
// keeps the tests short.
func throwawayTools(t *testing.T) (Tools, [][]float32) {
	t.Helper()
	ws, err := workspace.Open("fundus-gan", "")
	if err != nil {
		t.Fatal(err)
	}
	be := ws.Model.Backend()
	train, _ := dataset.Open("fundus", dataset.Options{N: 16, Seed: 5, Size: 64})
	held, _ := dataset.Open("fundus", dataset.Options{N: 8, Seed: 6, Size: 64})
	orc, err := evaluate.TrainOracle(train, held, be, evaluate.OracleOptions{Steps: 2, Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	seg, err := TrainSegmenter(be, SegmenterOptions{N: 8, Held: 4, Steps: 1, Batch: 2, Width: 4, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	dirs := make([][]float32, len(orc.Factors))
	for i := range dirs {
		dirs[i] = make([]float32, ws.Model.LatentDim())
		for j := range dirs[i] {
			dirs[i][j] = float32(r.NormFloat64())
		}
	}
	ed, err := edit.NewFixed("linear", dirs, nil, be)
	if err != nil {
		t.Fatal(err)
	}
	names := edit.DefaultNames(len(dirs))
	names[3], names[4] = orc.Factors[3], orc.Factors[4]
	if err := ed.SetNames(names); err != nil {
		t.Fatal(err)
	}
	cal, err := Calibrate(ws.Model, ed, "test", orc, 2, 77, 1.5)
	if err != nil {
		t.Fatal(err)
	}
	return Tools{Model: ws.Model, Editor: ed, EditorName: "test", Oracle: orc, Segmenter: seg, Cal: cal}, dirs
}

// TestShardsConcatenate runs 5 cases whole and in two shards on the embedded
// fundus GAN and compares every file.
func TestShardsConcatenate(t *testing.T) {
	tools, dirs := throwawayTools(t)
	be, orc := tools.Model.Backend(), tools.Oracle
	req, _ := ParseRequest("haemorrhage:3,cup:0.7")
	whole, parts := t.TempDir(), t.TempDir()
	const n = 5
	if _, err := Run(tools, Options{Request: req, N: n, Seed: 100, Shard: Shard{0, 1}, Out: whole}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := Run(tools, Options{Request: req, N: n, Seed: 100, Shard: Shard{i, 2}, Out: parts}); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := os.ReadFile(filepath.Join(whole, "cases.csv"))
	p0, _ := os.ReadFile(filepath.Join(parts, "cases-0000-of-0002.csv"))
	p1, _ := os.ReadFile(filepath.Join(parts, "cases-0001-of-0002.csv"))
	if lines := bytes.Count(want, []byte("\n")); lines != n+1 {
		t.Fatalf("cases.csv has %d lines, want header + %d", lines, n)
	}
	if got := append(append([]byte(nil), p0...), p1...); !bytes.Equal(got, want) {
		t.Errorf("shards concatenate to\n%s\nwant\n%s", got, want)
	}
	wantExact, _ := os.ReadFile(filepath.Join(whole, "cases.jsonl"))
	e0, _ := os.ReadFile(filepath.Join(parts, "cases-0000-of-0002.jsonl"))
	e1, _ := os.ReadFile(filepath.Join(parts, "cases-0001-of-0002.jsonl"))
	if got := append(append([]byte(nil), e0...), e1...); bytes.Count(wantExact, []byte("\n")) != n || !bytes.Equal(got, wantExact) {
		t.Errorf("exact cases of the shards concatenate to\n%s\nwant\n%s", got, wantExact)
	}
	files, _ := filepath.Glob(filepath.Join(whole, "cases", "*.png"))
	if len(files) != 5*n {
		t.Fatalf("%d case images, want %d", len(files), 5*n)
	}
	for _, f := range files {
		a, _ := os.ReadFile(f)
		b, err := os.ReadFile(filepath.Join(parts, "cases", filepath.Base(f)))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between the whole run and its shards (%v)", filepath.Base(f), err)
		}
	}

	// The page of the whole run: one section, its grid beside it.
	rep := t.TempDir()
	run := filepath.Join(t.TempDir(), "ifg-haem3")
	if err := os.Rename(whole, run); err != nil {
		t.Fatal(err)
	}
	if err := WriteReport(rep, []string{run}); err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(filepath.Join(rep, ReportFile))
	if !strings.Contains(string(html), "<h2>"+req.String()+"</h2>") || !strings.Contains(string(html), "pseudocase-ifg-haem3.png") {
		t.Errorf("report lacks the run: %.400s", html)
	}
	if _, err := os.Stat(filepath.Join(rep, "pseudocase-ifg-haem3.png")); err != nil {
		t.Error(err)
	}
	if err := WriteReport(rep, []string{parts}); err == nil || !strings.Contains(err.Error(), "summary.json") {
		t.Errorf("report of a sharded dir: %v, want a missing summary.json error", err)
	}

	// A request the editor has no direction for is refused before any work.
	ed2, _ := edit.NewFixed("linear", dirs[:2], nil, be)
	ed2.SetNames([]string{"haemorrhages", "dir 1"})
	cal2, err := Calibrate(tools.Model, ed2, "two", orc, 1, 77, 1.5)
	if err != nil {
		t.Fatal(err)
	}
	det, _ := ParseRequest("detachment:0.5@90")
	if _, err := cal2.Plan(det, 6); err == nil || !strings.Contains(err.Error(), "no direction for detachment") {
		t.Errorf("plan without a detachment direction: %v", err)
	}
}

func TestBlobs(t *testing.T) {
	const size = 16
	m := make([]bool, size*size)
	set := func(x0, y0, w, h int) {
		for y := y0; y < y0+h; y++ {
			for x := x0; x < x0+w; x++ {
				m[y*size+x] = true
			}
		}
	}
	set(1, 1, 2, 2)     // a blot
	set(6, 1, 3, 1)     // another
	set(0, 8, 16, 8)    // a detachment-sized region: not a haemorrhage
	m[5*size+12] = true // a single pixel: noise
	if got := blobs(m, size); got != 2 {
		t.Errorf("blobs = %d, want 2", got)
	}
}

// A plan's steps, pushed through the calibration's linear model, reach the
// targets; a request out of reach is scaled down as a whole.
func TestPlanSolvesAndScales(t *testing.T) {
	factors := fundus.FactorNames()
	c := &Calibration{Editor: "e", Method: "linear", Factors: factors,
		Direction: map[string]int{}, DirName: map[string]string{}, Effect: map[string]map[string]float64{}}
	r := rand.New(rand.NewPCG(3, 3))
	for k, f := range factors {
		c.Direction[f], c.DirName[f] = k, f
		c.Effect[f] = map[string]float64{}
		for _, g := range factors {
			c.Effect[f][g] = 0.02 * r.NormFloat64()
		}
		c.Effect[f][f] += 0.1
	}
	req, _ := ParseRequest("detachment:0.3@120,cup:0.5")
	p, err := c.Plan(req, 1e9)
	if err != nil {
		t.Fatal(err)
	}
	before := []float64{0.1, 0.05, -0.02, 2, 0.4}
	steps, scale := p.Steps(c, req.Targets(), before)
	if scale != 1 || len(steps) != 4 {
		t.Fatalf("steps %v, scale %v", steps, scale)
	}
	for fi, f := range factors {
		tg, ok := req.Targets()[f]
		if !ok {
			continue
		}
		got := before[fi]
		for i, s := range steps {
			got += float64(s.T) * c.Effect[p.Factors[i]][f]
		}
		if math.Abs(got-tg) > 1e-4 {
			t.Errorf("%s: linear model reaches %.5f, target %.5f", f, got, tg)
		}
	}
	p.MaxStep = 0.5
	small, scale := p.Steps(c, req.Targets(), before)
	if !(scale < 1) {
		t.Fatalf("scale %v for steps beyond 0.5", scale)
	}
	for i := range small {
		if math.Abs(float64(small[i].T)) > 0.5+1e-6 || math.Abs(float64(small[i].T)-scale*float64(steps[i].T)) > 1e-5 {
			t.Errorf("step %d: %v, want %v·%v", i, small[i].T, scale, steps[i].T)
		}
	}
}

// killOptions is the recipe of the run TestSegmenterKillAndResume kills:
// the Dice loss and a schedule, so that resuming restores both.
func killOptions(dir string, resume bool) SegmenterOptions {
	return SegmenterOptions{N: 16, Held: 4, Steps: 40, Batch: 2, Width: 4, Levels: 2, Blocks: 2, Loss: LossBCEDice,
		Schedule: train.Schedule{Kind: "cosine", Warmup: 5}, Seed: 3, Dir: dir, Resume: resume}
}

// killSegmenter is the run TestSegmenterKillAndResume kills.
func killSegmenter(dir string, resume bool) error {
	be, err := engine.NewBackend("")
	if err != nil {
		return err
	}
	_, err = TrainSegmenter(be, killOptions(dir, resume))
	return err
}

// TestSegmenterResumeRefusesAnotherRecipe: --resume continues only the run
// it was given; a longer run is a continuation only under a constant rate.
func TestSegmenterResumeRefusesAnotherRecipe(t *testing.T) {
	be, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	first := killOptions(dir, false)
	first.Steps, first.Held = 2, 1
	if _, err := TrainSegmenter(be, first); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(o *SegmenterOptions)
		want string // "" : accepted
	}{
		{"width", func(o *SegmenterOptions) { o.Width = 5 }, "width 5 (stored run 4)"},
		{"loss", func(o *SegmenterOptions) { o.Loss = LossBCE }, "loss bce (stored run bce+dice)"},
		{"levels and lr", func(o *SegmenterOptions) { o.Levels, o.LR = 3, 1e-3 }, "levels 3 (stored run 2); lr 0.001 (stored run 0.002)"},
		{"schedule", func(o *SegmenterOptions) { o.Schedule.Warmup = 0 }, "schedule"},
		{"longer under cosine", func(o *SegmenterOptions) { o.Steps = 4 }, "steps 4 (stored run 2)"},
		{"shorter", func(o *SegmenterOptions) { o.Steps = 1 }, "steps 1 (stored run 2)"},
		{"same", func(o *SegmenterOptions) {}, ""},
	} {
		o := first
		o.Resume = true
		c.edit(&o)
		_, err := TrainSegmenter(be, o)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: resume refused: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), "another recipe") || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: resume = %v, want a refusal naming %q", c.name, err, c.want)
		}
	}
	// Under a constant rate a longer run continues the shorter one.
	flat := first
	flat.Schedule, flat.Dir = train.Schedule{}, t.TempDir()
	if _, err := TrainSegmenter(be, flat); err != nil {
		t.Fatal(err)
	}
	flat.Steps, flat.Resume = 3, true
	if _, err := TrainSegmenter(be, flat); err != nil {
		t.Errorf("a longer constant-rate run did not resume: %v", err)
	}
}

// TestSegmenterDiceLossLearns: a small U-Net of the shipped shape (three
// levels, two convolutions a block) trained with BCE + soft Dice under a
// cosine schedule: the loss falls and the held-out Dice of every channel
// rises above the untrained network's.
func TestSegmenterDiceLossLearns(t *testing.T) {
	be, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	opt := SegmenterOptions{N: 32, Held: 8, Steps: 0, Batch: 4, Width: 4, Levels: 3, Blocks: 2, Loss: LossBCEDice,
		Schedule: train.Schedule{Kind: "cosine", Factor: 0.1, Warmup: 5}, Seed: 5, LR: 5e-3}
	untrained, err := TrainSegmenter(be, opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.Steps = 80
	s, err := TrainSegmenter(be, opt)
	if err != nil {
		t.Fatal(err)
	}
	losses := s.History.Series("loss", "").Y
	first, last := mean(losses[:5]), mean(losses[len(losses)-5:])
	t.Logf("loss %.4f → %.4f; held-out Dice %v → %v", first, last, untrained.Dice, s.Dice)
	if !(last < 0.7*first) {
		t.Errorf("loss did not fall: first steps %.4f, last steps %.4f", first, last)
	}
	for _, c := range channelNames {
		if !(s.Dice[c] > untrained.Dice[c]+0.05) {
			t.Errorf("%s: held-out Dice %.3f after training, %.3f untrained", c, s.Dice[c], untrained.Dice[c])
		}
	}
	if s.Recipe.Loss != LossBCEDice || s.Levels != 3 || s.Blocks != 2 || s.Recipe.Schedule.Kind != "cosine" {
		t.Errorf("recipe not recorded: %+v", s.Recipe)
	}
}

// TestSegmenterKillAndResume: SIGKILL after a checkpoint, --resume, and the
// weights and Adam state are the uninterrupted run's, bit for bit.
func TestSegmenterKillAndResume(t *testing.T) {
	killtest.Run(t, 40, t.TempDir(), t.TempDir(), train.StateFile, killSegmenter)
}

func TestMain(m *testing.M) {
	killtest.Main(m, func(_, dir string) error { return killSegmenter(dir, false) })
}
