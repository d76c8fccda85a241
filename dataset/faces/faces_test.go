package faces

import (
	"image"
	"image/draw"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"latentedit/dataset"
)

// regionDiff is the mean absolute difference per channel (0..255) of two
// equally sized images inside box (in pixels), and outside it.
func regionDiff(a, b *image.RGBA, box image.Rectangle) (inside, outside float64) {
	var si, so float64
	var ni, no int
	bd := a.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			i := a.PixOffset(x, y)
			var d float64
			for k := 0; k < 3; k++ {
				d += math.Abs(float64(a.Pix[i+k]) - float64(b.Pix[i+k]))
			}
			d /= 3
			if (image.Point{x, y}).In(box) {
				si += d
				ni++
			} else {
				so += d
				no++
			}
		}
	}
	if ni > 0 {
		inside = si / float64(ni)
	}
	if no > 0 {
		outside = so / float64(no)
	}
	return inside, outside
}

func meanAbsDiff(a, b *image.RGBA) float64 {
	_, all := regionDiff(a, b, image.Rectangle{})
	return all
}

// box converts a box in unit coordinates to pixels of a size×size image.
func box(x0, y0, x1, y1 float64, size int) image.Rectangle {
	s := float64(size)
	return image.Rect(int(x0*s), int(y0*s), int(math.Ceil(x1*s)), int(math.Ceil(y1*s)))
}

func openFaces(t *testing.T, opt dataset.Options) dataset.Dataset {
	t.Helper()
	ds, err := dataset.Open("faces", opt)
	if err != nil {
		t.Fatalf("Open(faces, %+v): %v", opt, err)
	}
	return ds
}

func TestDeterminism(t *testing.T) {
	a := openFaces(t, dataset.Options{N: 100, Seed: 7})
	b := openFaces(t, dataset.Options{N: 100, Seed: 7})
	c := openFaces(t, dataset.Options{N: 100, Seed: 8})
	for _, tc := range []struct {
		name      string
		ds        dataset.Dataset
		i, j      int
		wantEqual bool
	}{
		{"same seed same index", b, 3, 3, true},
		{"same seed same index (last)", b, 99, 99, true},
		{"same seed different index", b, 3, 4, false},
		{"different seed same index", c, 3, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			imgA, labA, err := a.Sample(tc.i)
			if err != nil {
				t.Fatal(err)
			}
			imgB, labB, err := tc.ds.Sample(tc.j)
			if err != nil {
				t.Fatal(err)
			}
			pa, pb := imgA.(*image.RGBA).Pix, imgB.(*image.RGBA).Pix
			same := string(pa) == string(pb)
			for k := range labA {
				if labA[k] != labB[k] {
					same = false
				}
			}
			if same != tc.wantEqual {
				t.Errorf("samples equal = %v, want %v", same, tc.wantEqual)
			}
		})
	}
}

// TestSweepChangesImage checks that every factor is visible: the two ends of
// its sweep differ by a clear mean pixel difference at 32×32. The thresholds
// are per factor because the mean is over the whole image: smile and eye
// colour only touch a few dozen pixels (TestLocalEdits checks the mouth region
// itself), while hair, pose and background repaint a large part of it.
func TestSweepChangesImage(t *testing.T) {
	base := Neutral()
	minDiff := map[string]float64{"smile": 0.7, "eye_colour": 1.5, "bangs": 4}
	for _, name := range FactorNames() {
		t.Run(name, func(t *testing.T) {
			min, ok := minDiff[name]
			if !ok {
				min = 8
			}
			lo, hi, cyclic, err := FactorRange(name)
			if err != nil {
				t.Fatal(err)
			}
			if cyclic {
				hi = lo + (hi-lo)/2 // opposite hue; hi itself is lo's colour
			}
			fs, err := Sweep(base, name, []float64{lo, hi})
			if err != nil {
				t.Fatal(err)
			}
			d := meanAbsDiff(Render(fs[0], 32), Render(fs[1], 32)) // per channel, 0..255
			if d < min {
				t.Errorf("mean abs diff between %s=%v and %v is %.2f, want >= %v", name, lo, hi, d, min)
			}
			t.Logf("%s: mean abs diff %.2f", name, d)
		})
	}
}

// TestLocalEdits checks that smile and bangs act where they should: the
// change per pixel inside their region is much larger than outside it.
func TestLocalEdits(t *testing.T) {
	for _, tc := range []struct {
		factor   string
		lo, hi   float64
		x0, y0   float64 // region in unit coordinates
		x1, y1   float64
		minRatio float64
	}{
		{"smile", -1, 1, 0.3, 0.5, 0.7, 0.75, 5},
		{"bangs", 0, 1, 0.2, 0.12, 0.8, 0.4, 3},
	} {
		t.Run(tc.factor, func(t *testing.T) {
			for _, size := range []int{32, 64} {
				fs, err := Sweep(Neutral(), tc.factor, []float64{tc.lo, tc.hi})
				if err != nil {
					t.Fatal(err)
				}
				in, out := regionDiff(Render(fs[0], size), Render(fs[1], size), box(tc.x0, tc.y0, tc.x1, tc.y1, size))
				if in < 5 {
					t.Errorf("size %d: change inside region %.2f, want >= 5", size, in)
				}
				if in < tc.minRatio*out {
					t.Errorf("size %d: change inside %.2f vs outside %.2f, want ratio >= %v", size, in, out, tc.minRatio)
				}
				t.Logf("size %d: inside %.2f outside %.2f", size, in, out)
			}
		})
	}
}

func pearson(x, y []float64) float64 {
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= float64(len(x))
	my /= float64(len(y))
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	return sxy / math.Sqrt(sxx*syy)
}

func TestCorrelations(t *testing.T) {
	for _, tc := range []struct {
		correlated       bool
		lengthBangs, tol float64
		smilePitch       float64
	}{
		{true, 0.5, 0.15, 0.3},
		{false, 0, 0.1, 0},
	} {
		r := rand.New(rand.NewPCG(1, 2))
		const n = 4000
		var length, bangs, smile, pitch, yaw []float64
		for range n {
			f := Draw(r, tc.correlated)
			length = append(length, f.HairLength)
			bangs = append(bangs, f.Bangs)
			smile = append(smile, f.Smile)
			pitch = append(pitch, f.Pitch)
			yaw = append(yaw, f.Yaw)
		}
		for _, c := range []struct {
			name string
			got  float64
			want float64
		}{
			{"hair_length/bangs", pearson(length, bangs), tc.lengthBangs},
			{"smile/pitch", pearson(smile, pitch), tc.smilePitch},
			{"yaw/smile (always independent)", pearson(yaw, smile), 0},
		} {
			tol := tc.tol
			if c.want == 0 {
				tol = 0.1
			}
			if math.Abs(c.got-c.want) > tol {
				t.Errorf("correlated=%v: corr(%s) = %.3f, want %.2f ± %.2f", tc.correlated, c.name, c.got, c.want, tol)
			}
			t.Logf("correlated=%v: corr(%s) = %.3f", tc.correlated, c.name, c.got)
		}
	}
}

func TestLabelRanges(t *testing.T) {
	for _, noCorr := range []bool{false, true} {
		ds := openFaces(t, dataset.Options{N: 500, Seed: 3, NoCorrelation: noCorr})
		names := ds.Factors()
		if strings.Join(names, ",") != "smile,bangs,pitch,yaw,hair_colour,hair_length,skin_tone,eye_colour,background,face_width" {
			t.Fatalf("Factors() = %v", names)
		}
		fd := ds.(*Faces)
		for i := range ds.Len() {
			f, err := fd.FactorsAt(i)
			if err != nil {
				t.Fatal(err)
			}
			v := f.Vector()
			if len(v) != len(names) {
				t.Fatalf("len(labels) = %d, want %d", len(v), len(names))
			}
			for k, name := range names {
				lo, hi, cyclic, _ := FactorRange(name)
				x := float64(v[k])
				if x < lo || x > hi || (cyclic && x >= hi) {
					t.Fatalf("sample %d: %s = %v outside [%v, %v]", i, name, x, lo, hi)
				}
			}
			back, err := FromVector(v)
			if err != nil || back.Vector()[5] != v[5] {
				t.Fatalf("FromVector round trip failed: %v", err)
			}
		}
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opt     dataset.Options
		wantErr bool
		size    int
		n       int
	}{
		{"defaults", dataset.Options{}, false, 32, 60000},
		{"size 64", dataset.Options{Size: 64, N: 10}, false, 64, 10},
		{"size 48 rejected", dataset.Options{Size: 48}, true, 0, 0},
		{"size 128 rejected", dataset.Options{Size: 128}, true, 0, 0},
		{"negative N rejected", dataset.Options{N: -1}, true, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := dataset.Open("faces", tc.opt)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if h, w, c := ds.Shape(); h != tc.size || w != tc.size || c != 3 {
				t.Errorf("Shape = %d,%d,%d, want %d,%d,3", h, w, c, tc.size, tc.size)
			}
			if ds.Len() != tc.n {
				t.Errorf("Len = %d, want %d", ds.Len(), tc.n)
			}
			img, lab, err := ds.Sample(0)
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); b.Dx() != tc.size || b.Dy() != tc.size {
				t.Errorf("image %v, want %dx%d", b, tc.size, tc.size)
			}
			if len(lab) != NumFactors {
				t.Errorf("len(labels) = %d", len(lab))
			}
			if _, _, err := dataset.Batch(ds, []int{0, 1}); err != nil {
				t.Errorf("Batch: %v", err)
			}
		})
	}
}

func TestOutOfRange(t *testing.T) {
	ds := openFaces(t, dataset.Options{N: 5})
	for _, i := range []int{-1, 5, 1 << 40} {
		if _, _, err := ds.Sample(i); err == nil {
			t.Errorf("Sample(%d) gave no error", i)
		}
	}
}

func TestUnknownFactor(t *testing.T) {
	if _, err := Sweep(Neutral(), "nose_size", []float64{0, 1}); err == nil {
		t.Error("Sweep with unknown factor gave no error")
	}
	if _, err := FromVector(make([]float32, 3)); err == nil {
		t.Error("FromVector with 3 values gave no error")
	}
	vals, err := SweepValues("hair_colour", 4)
	if err != nil || vals[3] != 0.75 {
		t.Errorf("SweepValues(hair_colour, 4) = %v, %v; want last 0.75", vals, err)
	}
}

func BenchmarkRender32(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	fs := make([]Factors, 64)
	for i := range fs {
		fs[i] = Draw(r, true)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		Render(fs[i%len(fs)], 32)
	}
}

func BenchmarkRender64(b *testing.B) {
	f := Neutral()
	for b.Loop() {
		Render(f, 64)
	}
}

// TestWriteDocs regenerates docs/faces-sweep.png and docs/faces-contact.png
// when LATENTEDIT_WRITE_DOCS=1; otherwise it is skipped so that tests never
// touch the work tree.
func TestWriteDocs(t *testing.T) {
	if os.Getenv("LATENTEDIT_WRITE_DOCS") != "1" {
		t.Skip("set LATENTEDIT_WRITE_DOCS=1 to regenerate docs/faces-*.png")
	}
	const size, cols = 32, 7
	names := FactorNames()

	// Sweep grid: one row per factor, min → max, others at Neutral().
	grid := image.NewRGBA(image.Rect(0, 0, cols*size, len(names)*size))
	for row, name := range names {
		vals, err := SweepValues(name, cols)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := Sweep(Neutral(), name, vals)
		if err != nil {
			t.Fatal(err)
		}
		for col, f := range fs {
			draw.Draw(grid, image.Rect(col*size, row*size, (col+1)*size, (row+1)*size), Render(f, size), image.Point{}, draw.Src)
		}
	}

	// Contact sheet: 8×8 samples of the correlated dataset, seed 1.
	ds := openFaces(t, dataset.Options{Seed: 1})
	sheet := image.NewRGBA(image.Rect(0, 0, 8*size, 8*size))
	for i := range 64 {
		img, _, err := ds.Sample(i)
		if err != nil {
			t.Fatal(err)
		}
		x, y := (i%8)*size, (i/8)*size
		draw.Draw(sheet, image.Rect(x, y, x+size, y+size), img, image.Point{}, draw.Src)
	}

	dir := filepath.Join("..", "..", "docs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writePNG(t, filepath.Join(dir, "faces-sweep.png"), upscale(grid, 3))
	writePNG(t, filepath.Join(dir, "faces-contact.png"), upscale(sheet, 2))
}

// upscale enlarges img k times with nearest neighbour, so pixels stay visible.
func upscale(img *image.RGBA, k int) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx()*k, b.Dy()*k))
	for y := 0; y < b.Dy()*k; y++ {
		for x := 0; x < b.Dx()*k; x++ {
			out.SetRGBA(x, y, img.RGBAAt(b.Min.X+x/k, b.Min.Y+y/k))
		}
	}
	return out
}

// writePNG writes atomically (temp file in the same folder, then rename) so a
// reader never sees a half-written image.
func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".faces-*.png")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		t.Fatal(err)
	}
	if err := png.Encode(tmp, img); err != nil {
		tmp.Close()
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}
