package pseudocase

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"latentedit/dataset/fundus"
	"latentedit/internal/pngtest"
	inversion "latentedit/invert"
	"latentedit/workspace"
)

// The detachment region is where the renderer draws a detachment: it holds
// every lesion pixel of a rendered detachment, and little else.
func TestDetachmentRegionIsTheRenderersLesion(t *testing.T) {
	const size = 64
	for _, c := range []struct{ extent, angle float64 }{{0.6, 45}, {0.3, 200}, {0.9, 300}} {
		p := fundus.DefaultParams()
		p.Detachment, p.DetachmentAngle = c.extent, c.angle
		_, _, les := fundus.Render(p, size)
		req := Request{{Kind: Detachment, Amount: c.extent, Angle: c.angle, HasAngle: true}}
		region, err := BuildRegion(req, Structure{}, size, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		var inter, lesN, regN float64
		var sx, sy float64
		for j, v := range region {
			l := les.Pix[j] > 0
			if l {
				lesN++
			}
			if v {
				regN++
				sx += (float64(j%size) + 0.5) / size
				sy += (float64(j/size) + 0.5) / size
			}
			if l && v {
				inter++
			}
		}
		if inter/lesN < 0.97 {
			t.Errorf("%+v: the region holds %.3f of the rendered lesion's pixels, want ≥ 0.97", c, inter/lesN)
		}
		if iou := inter / (lesN + regN - inter); iou < 0.8 {
			t.Errorf("%+v: IoU of region and rendered lesion %.3f, want ≥ 0.8", c, iou)
		}
		// Its centroid lies in the requested direction (90° is up).
		ang := math.Atan2(-(sy/regN-0.5), sx/regN-0.5) * 180 / math.Pi
		if d := math.Abs(math.Remainder(ang-c.angle, 360)); d > 5 {
			t.Errorf("%+v: region centroid at %.1f°", c, ang)
		}
	}
}

func TestBuildRegionRefusals(t *testing.T) {
	const size = 16
	disc := Structure{DiscFound: true}
	disc.Masks[ChanDisc] = make([]bool, size*size)
	disc.Masks[ChanDisc][5*size+5] = true
	all := make([]bool, size*size)
	for j := range all {
		all[j] = true
	}
	cases := map[string]struct {
		r    Request
		st   Structure
		user []bool
		want string
	}{
		"no angle":       {Request{{Kind: Detachment, Amount: 0.5}}, disc, nil, "position"},
		"no disc":        {Request{{Kind: Cup, Amount: 0.7}}, Structure{}, nil, "no optic disc"},
		"mask size":      {Request{{Kind: Cup, Amount: 0.7}}, disc, make([]bool, 10), "the mask has 10 pixels"},
		"whole picture":  {Request{{Kind: Haemorrhage, Amount: 2}}, disc, all, "whole picture"},
		"empty mask":     {Request{{Kind: Haemorrhage, Amount: 2}}, disc, make([]bool, size*size), "covers no pixel"},
		"negative grown": {Request{{Kind: Cup, Amount: 0.7}}, disc, nil, "margin"},
	}
	for name, c := range cases {
		margin := 1
		if name == "negative grown" {
			margin = -1
		}
		_, err := BuildRegion(c.r, c.st, size, c.user, margin)
		if err == nil || !errors.Is(err, ErrRegion) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrRegion with %q", name, err, c.want)
		}
	}
	// A cup's region is the disc grown by the margin; haemorrhages with a
	// mask go in the mask only, and keep the structure everywhere.
	r, err := BuildRegion(Request{{Kind: Cup, Amount: 0.7}}, disc, size, nil, 1)
	if err != nil || count(r) != 9 || !r[4*size+4] || !r[6*size+6] || r[7*size+7] {
		t.Errorf("cup region %v (%d px), want the 3×3 around the disc pixel", err, count(r))
	}
	user := make([]bool, size*size)
	user[10*size+10] = true
	r, err = BuildRegion(Request{{Kind: Haemorrhage, Amount: 2}}, disc, size, user, 0)
	if err != nil || count(r) != 1 || !r[10*size+10] {
		t.Errorf("haemorrhages in a mask: region %v (%d px), want the mask's one pixel", err, count(r))
	}
	free, err := structureFree(Request{{Kind: Haemorrhage, Amount: 2}}, disc, size, user, 0)
	if err != nil || count(free) != 0 {
		t.Errorf("haemorrhages free the structure on %d px (%v), want none", count(free), err)
	}
}

func count(m []bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}

// The composite is the original, bit for bit, beyond the feather's reach,
// and the edit deep inside the region; a hard cut shows in the seam energy
// and the feather hides it.
func TestFeatherCompositeAndSeam(t *testing.T) {
	const size, c = 32, 3
	region := make([]bool, size*size)
	for y := 8; y < 24; y++ {
		for x := 8; x < 24; x++ {
			region[y*size+x] = true
		}
	}
	orig := make([]float32, size*size*c)
	edited := make([]float32, size*size*c)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range orig {
		orig[i] = float32(0.4*math.Sin(float64(i%(size*c))/20)) + float32(0.01*r.NormFloat64())
		edited[i] = orig[i] + 0.6
	}
	const sigma = 1.5
	alpha := Feather(region, size, sigma)
	comp := Composite(edited, orig, alpha, c)
	reach := int(math.Ceil(3 * sigma))
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			j := y*size + x
			far := x < 8-reach || x >= 24+reach || y < 8-reach || y >= 24+reach
			deep := x >= 8+reach && x < 24-reach && y >= 8+reach && y < 24-reach
			for k := 0; k < c; k++ {
				q := j*c + k
				if far && comp[q] != orig[q] {
					t.Fatalf("pixel (%d,%d) far outside: composite %v, original %v", x, y, comp[q], orig[q])
				}
				if deep && math.Abs(float64(comp[q]-edited[q])) > 1e-6 {
					t.Fatalf("pixel (%d,%d) deep inside: composite %v, edited %v", x, y, comp[q], edited[q])
				}
			}
			if a := alpha[j]; a < 0 || a > 1+1e-6 {
				t.Fatalf("alpha %v at (%d,%d)", a, x, y)
			}
		}
	}
	band := Border(region, size)
	hard := Composite(edited, orig, Feather(region, size, 0), c)
	eOrig, eHard, eSoft := SeamEnergy(orig, size, c, band), SeamEnergy(hard, size, c, band), SeamEnergy(comp, size, c, band)
	if !(eHard > 5*eOrig && eSoft < eHard/2) {
		t.Errorf("seam energy: original %.4f, hard cut %.4f, feathered %.4f; want the cut ≫ original and the feather < half the cut", eOrig, eHard, eSoft)
	}
	if e := SeamEnergy(orig, size, c, make([]bool, size*size)); !math.IsNaN(e) {
		t.Errorf("seam energy of an empty band %v, want NaN", e)
	}
}

func writeMask(t *testing.T, path string, w, h int, white func(x, y int) bool) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if white(x, y) {
				img.SetGray(x, y, color.Gray{Y: 255})
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadMask(t *testing.T) {
	dir := t.TempDir()
	left := func(x, y int) bool { return x < 8 }
	writeMask(t, filepath.Join(dir, "m16.png"), 16, 16, left)
	m, err := ReadMask(filepath.Join(dir, "m16.png"), 16, nil)
	if err != nil || count(m) != 8*16 || !m[0] || m[15] {
		t.Fatalf("16×16 mask: %v, %d px", err, count(m))
	}
	// The picture's size: cropped and resized as the picture was (a 48×32
	// picture's centre square is x 8–40).
	writeMask(t, filepath.Join(dir, "m48.png"), 48, 32, func(x, y int) bool { return x < 24 })
	pics := []inversion.Picture{{Path: "p.png", Crop: inversion.Crop{SourceW: 48, SourceH: 32, X0: 8, Side: 32, Size: 16}}}
	m, err = ReadMask(filepath.Join(dir, "m48.png"), 16, pics)
	if err != nil || count(m) < 7*16 || count(m) > 9*16 || !m[0] || m[15] {
		t.Fatalf("48×32 mask through the picture's crop: %v, %d px, want the left half", err, count(m))
	}
	for name, want := range map[string]string{"m48.png": "want 16x16", "black.png": "no pixel is white", "junk.png": "not a PNG or JPEG", "none.png": "no such file"} {
		switch name {
		case "black.png":
			writeMask(t, filepath.Join(dir, name), 16, 16, func(x, y int) bool { return false })
		case "junk.png":
			os.WriteFile(filepath.Join(dir, name), []byte("not an image"), 0o644)
		}
		if _, err := ReadMask(filepath.Join(dir, name), 16, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", name, err, want)
		}
	}
}

// shippedTools are a run's tools on the embedded fundus GAN with its
// shipped oracle, segmenter and InterFaceGAN editor.
func shippedTools(t *testing.T) Tools {
	t.Helper()
	ws, err := workspace.Open("fundus-gan", "")
	if err != nil {
		t.Fatal(err)
	}
	tools, err := Load(ws, "interfacegan", 600, 64, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return tools
}

// The judges' gradients are the derivatives of their losses: a central
// difference along a random direction of the pixels matches the gradient's
// projection on it.
func TestJudgeGradientsMatchFiniteDifferences(t *testing.T) {
	tools := shippedTools(t)
	m := tools.Model
	const n = 2
	pix, err := m.GenerateFloats(append(m.Latent(11), m.Latent(12)...), n)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	v := make([]float32, len(pix))
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	// eps is small because the judges are piecewise linear (leaky ReLU):
	// a longer step crosses kinks along the 12 288-pixel direction.
	along := func(eps float32, f func(p []float32) ([]float64, []float32, error)) (fd, an float64) {
		_, g, err := f(pix)
		if err != nil {
			t.Fatal(err)
		}
		for i := range g {
			an += float64(g[i]) * float64(v[i])
		}
		shift := func(s float32) float64 {
			p := append([]float32(nil), pix...)
			for i := range p {
				p[i] += s * v[i]
			}
			l, _, err := f(p)
			if err != nil {
				t.Fatal(err)
			}
			return l[0] + l[1]
		}
		return (shift(eps) - shift(-eps)) / (2 * float64(eps)), an
	}
	targets := [][]float64{{0.6, 0.4, 0.4, math.NaN(), 0.7}, {math.NaN(), math.NaN(), math.NaN(), 3, math.NaN()}}
	fd, an := along(3e-5, func(p []float32) ([]float64, []float32, error) { return tools.Oracle.Steer(p, n, targets) })
	if math.Abs(fd-an) > 0.03*math.Abs(an)+1e-4 {
		t.Errorf("oracle steer: finite difference %.6g, gradient %.6g", fd, an)
	}
	st, err := tools.Segmenter.Predict(pix, n)
	if err != nil {
		t.Fatal(err)
	}
	px := 64 * 64
	ref, wt := make([]float32, n*px*numChannels), make([]float32, n*px*numChannels)
	for i := range n {
		for j := 0; j < px; j++ {
			k := (i*px + j) * numChannels
			ref[k+ChanVessels], ref[k+ChanDisc] = bit(!st[i].Masks[ChanVessels][j]), bit(st[i].Masks[ChanDisc][j])
			wt[k+ChanVessels], wt[k+ChanDisc] = bit(j%3 != 0), 1
		}
	}
	fd, an = along(1e-4, func(p []float32) ([]float64, []float32, error) { return tools.Segmenter.KeepLoss(p, n, ref, wt) })
	if math.Abs(fd-an) > 0.03*math.Abs(an)+1e-4 {
		t.Errorf("segmenter keep: finite difference %.6g, gradient %.6g", fd, an)
	}
	// The pull-back through G: ∂/∂z [Σ G(z)·g + prior·mean z²].
	rf := &refiner{m: m}
	z := append(m.Latent(11), m.Latent(12)...)
	g := make([]float32, len(pix))
	for i := range g {
		g[i] = float32(r.NormFloat64()) * 0.01
	}
	const prior = 0.5
	gz, err := rf.pullback(z, n, g, prior)
	if err != nil {
		t.Fatal(err)
	}
	u := make([]float32, len(z))
	var an2 float64
	for i := range u {
		u[i] = float32(r.NormFloat64())
		an2 += float64(gz[i]) * float64(u[i])
	}
	obj := func(s float32) float64 {
		zz := append([]float32(nil), z...)
		for i := range zz {
			zz[i] += s * u[i]
		}
		img, err := m.GenerateFloats(zz, n)
		if err != nil {
			t.Fatal(err)
		}
		var o float64
		for i := range img {
			o += float64(img[i]) * float64(g[i])
		}
		for i := range n {
			var q float64
			for _, x := range zz[i*len(z)/n : (i+1)*len(z)/n] {
				q += float64(x) * float64(x)
			}
			o += prior * q / float64(len(z)/n)
		}
		return o
	}
	const eps = 1e-3
	if fd := (obj(eps) - obj(-eps)) / (2 * eps); math.Abs(fd-an2) > 0.03*math.Abs(an2)+1e-4 {
		t.Errorf("pull-back through G: finite difference %.6g, gradient %.6g", fd, an2)
	}
	// Bad targets are refused.
	if _, _, err := tools.Oracle.Steer(pix, n, targets[:1]); err == nil {
		t.Error("one target row for two images accepted")
	}
	if _, _, err := tools.Oracle.Steer(pix, n, [][]float64{{math.Inf(1), 0, 0, 0, 0}, targets[1]}); err == nil || !strings.Contains(err.Error(), "Inf") {
		t.Errorf("infinite target: %v", err)
	}
	if _, _, err := tools.Segmenter.KeepLoss(pix, n, ref[:10], wt); err == nil {
		t.Error("short reference masks accepted")
	}
}

// A region-constrained run moves the cup towards the request while the
// picture outside the region comes closer to the original than the
// editor's step alone left it; the composite is the original far from the
// region; shards merge to the whole run.
func TestRegionConstrainedRun(t *testing.T) {
	tools := shippedTools(t)
	req, _ := ParseRequest("cup:0.8")
	ro := DefaultRegionOptions()
	ro.Steps, ro.SeamRenders = 25, 8
	whole := t.TempDir()
	const n = 4
	sum, err := Run(tools, Options{Request: req, N: n, Seed: 40, Out: whole, Region: &ro})
	if err != nil {
		t.Fatal(err)
	}
	r := sum.Region
	if r == nil || r.Options != ro.Spec() || !(r.SeamReal > 0) || !(r.RealVsReal > 0) || r.FrechetRatioComp == nil || len(r.Reference.Mean) != 5 {
		t.Fatalf("region summary %+v", r)
	}
	if !(r.Goal < 0.7*r.GoalStart) || !(r.KeepPSNR > r.KeepPSNRStart+1) {
		t.Errorf("refinement: goal loss %.4f → %.4f, PSNR outside the region %.2f → %.2f dB; want the loss down by 30%% and PSNR up by 1 dB",
			r.GoalStart, r.Goal, r.KeepPSNRStart, r.KeepPSNR)
	}
	if !(r.Area > 0 && r.Area < 0.2) || r.Composite.GoalMet == nil {
		t.Errorf("region area %.3f, composite %+v", r.Area, r.Composite)
	}
	// Far from the region (beyond the margin and the feather) the composite
	// is the picture before, to the 8-bit level.
	for i := range n {
		before := pngtest.Read(t, CaseFile(whole, i, "before"))
		comp := pngtest.Read(t, CaseFile(whole, i, "composite"))
		reg := pngtest.Read(t, CaseFile(whole, i, "region")).(*image.Gray)
		near := make([]bool, 64*64)
		for j, v := range reg.Pix {
			near[j] = v > 0
		}
		near = dilate(near, 64, int(math.Ceil(3*ro.Feather)))
		diff := 0
		for y := 0; y < 64; y++ {
			for x := 0; x < 64; x++ {
				if near[y*64+x] {
					continue
				}
				r1, g1, b1, _ := before.At(x, y).RGBA()
				r2, g2, b2, _ := comp.At(x, y).RGBA()
				if d := max(absDiff(r1, r2), absDiff(g1, g2), absDiff(b1, b2)); d > 257 {
					diff++
				}
			}
		}
		if diff > 0 {
			t.Errorf("case %d: %d pixels far from the region differ between composite and original", i, diff)
		}
	}
	csvRaw, _ := os.ReadFile(filepath.Join(whole, "cases.csv"))
	if !strings.Contains(string(csvRaw), "seam_energy_composite") || !strings.Contains(string(csvRaw), "composite_after_cup_to_disc") {
		t.Errorf("cases.csv lacks the region columns: %.300s", csvRaw)
	}
	// Shards of the same run merge to it.
	parts := t.TempDir()
	for i := range 2 {
		if _, err := Run(tools, Options{Request: req, N: n, Seed: 40, Shard: Shard{i, 2}, Out: parts, Region: &ro}); err != nil {
			t.Fatal(err)
		}
	}
	merged := filepath.Join(t.TempDir(), "merged")
	msum, err := Merge(merged, []string{parts})
	if err != nil {
		t.Fatal(err)
	}
	sameCases(t, whole, merged)
	if msum.Region == nil || msum.Region.Goal != r.Goal || msum.Region.SeamRatioComposite != r.SeamRatioComposite {
		t.Errorf("merged region summary %+v, whole %+v", msum.Region, r)
	}
	// Shards with other region options are not one run.
	other := ro
	other.Goal = 1
	odd := t.TempDir()
	Run(tools, Options{Request: req, N: n, Seed: 40, Shard: Shard{0, 2}, Out: odd, Region: &ro})
	Run(tools, Options{Request: req, N: n, Seed: 40, Shard: Shard{1, 2}, Out: odd, Region: &other})
	if _, err := Merge(filepath.Join(t.TempDir(), "m"), []string{odd}); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("merge of shards with other region options: %v", err)
	}
	// Refusals before any work: a detachment without a position, bad options.
	det, _ := ParseRequest("detachment:0.5")
	bad := t.TempDir()
	if _, err := Run(tools, Options{Request: det, N: 1, Out: filepath.Join(bad, "a"), Region: &ro}); err == nil || !errors.Is(err, ErrRegion) {
		t.Errorf("detachment without an angle: %v", err)
	}
	nan := ro
	nan.Goal = math.NaN()
	if _, err := Run(tools, Options{Request: req, N: 1, Out: filepath.Join(bad, "b"), Region: &nan}); err == nil || !errors.Is(err, ErrRegion) {
		t.Errorf("NaN goal weight: %v", err)
	}
	if left, _ := os.ReadDir(bad); len(left) != 0 {
		t.Errorf("refused runs left %d entries behind", len(left))
	}
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

// sameCases fails unless the merged run's cases.csv and cases.jsonl are the
// whole run's, byte for byte.
func sameCases(t *testing.T, whole, merged string) {
	t.Helper()
	for _, f := range []string{"cases.csv", "cases.jsonl"} {
		a, _ := os.ReadFile(filepath.Join(whole, f))
		b, _ := os.ReadFile(filepath.Join(merged, f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s of the merged shards differs from the whole run's", f)
		}
	}
}
