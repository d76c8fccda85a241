package folder

import (
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"latentedit/dataset"
)

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

func writeJPEG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := jpeg.Encode(f, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
}

func solid(w, h int, c color.Color) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, c)
		}
	}
	return img
}

func TestOpenRequiresDir(t *testing.T) {
	_, err := dataset.Open("folder", dataset.Options{})
	if err == nil || !strings.Contains(err.Error(), "Dir is required") {
		t.Fatalf("got %v", err)
	}
	_, err = Open(dataset.Options{Dir: filepath.Join(t.TempDir(), "missing")})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing dir: %v", err)
	}
	_, err = Open(dataset.Options{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "no PNG or JPEG") {
		t.Fatalf("empty dir: %v", err)
	}
}

func TestFolder(t *testing.T) {
	dir := t.TempDir()
	red := color.RGBA{255, 0, 0, 255}
	blue := color.RGBA{0, 0, 255, 255}
	writePNG(t, filepath.Join(dir, "b.png"), solid(16, 16, blue))
	writePNG(t, filepath.Join(dir, "a.png"), solid(16, 16, red))
	writeJPEG(t, filepath.Join(dir, "c.JPG"), solid(16, 16, color.RGBA{0, 255, 0, 255}))
	// Read: sub-folders (a folder whose name looks like an image's too).
	os.Mkdir(filepath.Join(dir, "sub.png"), 0o755)
	writePNG(t, filepath.Join(dir, "sub.png", "x.png"), solid(16, 16, blue))
	// Ignored: other extensions, hidden files and hidden folders.
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hi"), 0o644)
	writePNG(t, filepath.Join(dir, ".hidden.png"), solid(3, 3, red))
	os.Mkdir(filepath.Join(dir, ".cache"), 0o755)
	writePNG(t, filepath.Join(dir, ".cache", "y.png"), solid(3, 3, red))

	ds, err := dataset.Open("folder", dataset.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	d := ds.(*Dataset)
	if d.Len() != 4 || d.File(3) != filepath.Join(dir, "sub.png", "x.png") {
		t.Fatalf("Len %d, want 4 with sub.png/x.png last: %v", d.Len(), d.files)
	}
	if h, w, c := d.Shape(); h != 16 || w != 16 || c != 3 {
		t.Fatalf("shape %d %d %d", h, w, c)
	}
	if len(d.Factors()) != 0 {
		t.Fatalf("factors %v", d.Factors())
	}
	wantFirst := []color.RGBA{red, blue, {0, 255, 0, 255}, blue}
	for i, want := range wantFirst {
		img, lab, err := d.Sample(i)
		if err != nil {
			t.Fatal(err)
		}
		if len(lab) != 0 {
			t.Fatalf("labels %v", lab)
		}
		got := color.RGBAModel.Convert(img.At(8, 8)).(color.RGBA)
		if diff(got, want) > 6 {
			t.Errorf("sample %d (%s) centre %v, want %v", i, d.File(i), got, want)
		}
	}
	pix, _, err := dataset.Batch(d, []int{0, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(pix) != 3*16*16*3 || pix[0] != 1 || pix[1] != -1 {
		t.Fatalf("batch pixels %v", pix[:3])
	}
	if n, _ := Open(dataset.Options{Dir: dir, N: 2}); n == nil || n.Len() != 2 {
		t.Fatal("N=2 did not truncate")
	}
}

func diff(a, b color.RGBA) int {
	abs := func(x int) int {
		if x < 0 {
			return -x
		}
		return x
	}
	return max(abs(int(a.R)-int(b.R)), abs(int(a.G)-int(b.G)), abs(int(a.B)-int(b.B)))
}

func TestResize(t *testing.T) {
	dir := t.TempDir()
	// 96x64: a centre square 64x64 from x=16, left and right strips red, centre
	// a one-pixel black/white checkerboard that averages to grey.
	img := image.NewRGBA(image.Rect(0, 0, 96, 64))
	for y := 0; y < 64; y++ {
		for x := 0; x < 96; x++ {
			c := color.RGBA{255, 0, 0, 255}
			if x >= 16 && x < 80 {
				v := uint8(0)
				if (x+y)%2 == 0 {
					v = 255
				}
				c = color.RGBA{v, v, v, 255}
			}
			img.Set(x, y, c)
		}
	}
	writePNG(t, filepath.Join(dir, "wide.png"), img)
	// A tall PNG of another size, cropped and resized too.
	writePNG(t, filepath.Join(dir, "tall.png"), solid(10, 30, color.NRGBA{0, 0, 255, 255}))

	d, err := Open(dataset.Options{Dir: dir, Size: 8})
	if err != nil {
		t.Fatal(err)
	}
	if h, w, c := d.Shape(); h != 8 || w != 8 || c != 3 {
		t.Fatalf("shape %d %d %d", h, w, c)
	}
	for i := 0; i < d.Len(); i++ {
		im, _, err := d.Sample(i)
		if err != nil {
			t.Fatal(err)
		}
		if im.Bounds() != image.Rect(0, 0, 8, 8) {
			t.Fatalf("sample %d bounds %v", i, im.Bounds())
		}
	}
	im, _, _ := d.Sample(1) // wide.png sorts after tall.png
	for y := 0; y < 8; y++ {
		for x := 0; x < 8; x++ {
			c := color.RGBAModel.Convert(im.At(x, y)).(color.RGBA)
			// Cropped: no red; area-averaged: grey, not black or white.
			if c.R != c.G || c.G != c.B || c.R < 90 || c.R > 165 || c.A != 255 {
				t.Fatalf("pixel (%d,%d) = %v, want opaque mid grey", x, y, c)
			}
		}
	}
}

func TestNativeSizeMismatch(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "a.png"), solid(8, 8, color.White))
	writePNG(t, filepath.Join(dir, "b.png"), solid(9, 8, color.White))
	d, err := Open(dataset.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = d.Sample(1)
	if err == nil || !strings.Contains(err.Error(), "b.png") || !strings.Contains(err.Error(), "Size") {
		t.Fatalf("size mismatch: %v", err)
	}
}

func TestTransparentOverBlack(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "a.png"), solid(4, 4, color.NRGBA{255, 255, 255, 0}))
	d, err := Open(dataset.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	im, _, err := d.Sample(0)
	if err != nil {
		t.Fatal(err)
	}
	if c := im.(*image.RGBA).RGBAAt(1, 1); c != (color.RGBA{0, 0, 0, 255}) {
		t.Fatalf("transparent pixel became %v", c)
	}
}

func TestCorruptFile(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "a.png"), solid(8, 8, color.White))
	bad := filepath.Join(dir, "b.jpg")
	os.WriteFile(bad, []byte("\xff\xd8\xff\xe0 this is not really a jpeg"), 0o644)
	d, err := Open(dataset.Options{Dir: dir, Size: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Sample(0); err != nil {
		t.Fatal(err)
	}
	_, _, err = d.Sample(1)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("corrupt file error %v does not name %s", err, bad)
	}
	if _, _, err := dataset.Batch(d, []int{0, 1}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("batch error %v", err)
	}
	// Native size is read from the first file's header: a corrupt first file fails Open.
	os.Remove(filepath.Join(dir, "a.png"))
	if _, err := Open(dataset.Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("open with corrupt first file: %v", err)
	}
}

// TestGreyscaleBecomesRGB: a greyscale PNG reads as three equal channels.
func TestGreyscaleBecomesRGB(t *testing.T) {
	dir := t.TempDir()
	g := image.NewGray(image.Rect(0, 0, 20, 12))
	for i := range g.Pix {
		g.Pix[i] = 128
	}
	writePNG(t, filepath.Join(dir, "g.png"), g)
	d, err := Open(dataset.Options{Dir: dir, Size: 8})
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := d.Sample(0)
	if err != nil {
		t.Fatal(err)
	}
	if got := color.RGBAModel.Convert(img.At(4, 4)).(color.RGBA); got != (color.RGBA{128, 128, 128, 255}) {
		t.Fatalf("greyscale pixel %v, want 128,128,128", got)
	}
}
