package export

import (
	"encoding/csv"
	"errors"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"latentedit/dataset"
	"latentedit/internal/pngtest"
)

// fake is a tiny dataset: n grey 4x3 images of value 10*i, factors "a" and "b".
type fake struct {
	n       int
	factors []string
	failAt  int
}

func (f *fake) Name() string         { return "fake" }
func (f *fake) Len() int             { return f.n }
func (f *fake) Shape() (h, w, c int) { return 3, 4, 1 }
func (f *fake) Factors() []string    { return f.factors }
func (f *fake) Sample(i int) (image.Image, []float32, error) {
	if i == f.failAt {
		return nil, nil, errors.New("broken sample")
	}
	img := image.NewGray(image.Rect(0, 0, 4, 3))
	for j := range img.Pix {
		img.Pix[j] = uint8(10 * i)
	}
	lab := make([]float32, len(f.factors))
	for j := range lab {
		lab[j] = float32(i) + 0.5*float32(j)
	}
	return img, lab, nil
}

var _ dataset.Dataset = (*fake)(nil)

func TestWrite(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	ds := &fake{n: 5, factors: []string{"a", "b"}, failAt: -1}
	var calls []int
	if err := Write(ds, 0, out, func(done, total int) {
		if total != 5 {
			t.Errorf("total %d", total)
		}
		calls = append(calls, done)
	}); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 5 || calls[4] != 5 {
		t.Fatalf("progress calls %v", calls)
	}
	ents, _ := os.ReadDir(filepath.Join(out, "images"))
	if len(ents) != 5 || ents[0].Name() != "000000.png" || ents[4].Name() != "000004.png" {
		t.Fatalf("images dir: %v", ents)
	}
	img := pngtest.Read(t, filepath.Join(out, "images", "000003.png"))
	if img.Bounds() != image.Rect(0, 0, 4, 3) || color.GrayModel.Convert(img.At(1, 1)).(color.Gray).Y != 30 {
		t.Fatalf("image 3: %v %v", img.Bounds(), img.At(1, 1))
	}

	f, err := os.Open(filepath.Join(out, "labels.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 || strings.Join(rows[0], ",") != "file,a,b" || strings.Join(rows[3], ",") != "images/000002.png,2,2.5" {
		t.Fatalf("labels.csv: %v", rows)
	}

	sheet := pngtest.Read(t, filepath.Join(out, "contact.png"))
	// 5 images: 3 columns, 2 rows; tile width 4: scale 21 makes 3*84+8 = 260 >= 256.
	if b := sheet.Bounds(); b.Dx() != 3*4*21+4*Gap || b.Dy() != 2*3*21+3*Gap {
		t.Fatalf("contact sheet %v", b)
	}
	if b := sheet.Bounds(); b.Dx() < ContactMinWidth {
		t.Fatalf("contact sheet narrower than %d: %v", ContactMinWidth, b)
	}

	// No temporary files are left anywhere.
	filepath.Walk(out, func(p string, info os.FileInfo, err error) error {
		if strings.Contains(filepath.Base(p), ".tmp-") {
			t.Errorf("leftover %s", p)
		}
		return nil
	})
}

func TestWriteNoFactorsAndLimit(t *testing.T) {
	out := t.TempDir()
	if err := Write(&fake{n: 100, failAt: -1}, 70, out, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "labels.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 71 || lines[0] != "file" || lines[70] != "images/000069.png" {
		t.Fatalf("labels.csv has %d lines, first %q last %q", len(lines), lines[0], lines[len(lines)-1])
	}
	// At most 64 images on the sheet: 8 columns, 8 rows.
	sheet := pngtest.Read(t, filepath.Join(out, "contact.png"))
	s := ScaleFor(4, 8, ContactMinWidth)
	if sheet.Bounds().Dx() != 8*4*s+9*Gap || sheet.Bounds().Dy() != 8*3*s+9*Gap {
		t.Fatalf("sheet %v with scale %d", sheet.Bounds(), s)
	}
}

func TestWriteSampleError(t *testing.T) {
	out := t.TempDir()
	err := Write(&fake{n: 5, failAt: 2}, 0, out, nil)
	if err == nil || !strings.Contains(err.Error(), "sample 2") || !strings.Contains(err.Error(), "broken sample") {
		t.Fatalf("error %v", err)
	}
}

func TestContactSheet(t *testing.T) {
	red := image.NewRGBA(image.Rect(0, 0, 2, 2))
	for i := 0; i < len(red.Pix); i += 4 {
		red.Pix[i], red.Pix[i+3] = 255, 255
	}
	grey := image.NewGray(image.Rect(5, 5, 6, 7)) // 1x2, offset bounds
	grey.Pix[0], grey.Pix[1] = 100, 200
	sheet := ContactSheet([]image.Image{red, grey, nil}, 2, 3)
	// Tiles 6x6, 2 columns, 2 rows.
	if sheet.Bounds() != image.Rect(0, 0, 2*6+3*Gap, 2*6+3*Gap) {
		t.Fatalf("bounds %v", sheet.Bounds())
	}
	at := func(x, y int) color.RGBA { return sheet.RGBAAt(x, y) }
	if at(0, 0) != Background || at(Gap+6, Gap) != Background {
		t.Errorf("gaps not background: %v %v", at(0, 0), at(Gap+6, Gap))
	}
	if at(Gap, Gap) != (color.RGBA{255, 0, 0, 255}) || at(Gap+5, Gap+5) != (color.RGBA{255, 0, 0, 255}) {
		t.Errorf("red tile: %v %v", at(Gap, Gap), at(Gap+5, Gap+5))
	}
	x1 := Gap + 6 + Gap
	if at(x1, Gap) != (color.RGBA{100, 100, 100, 255}) || at(x1+2, Gap+2) != (color.RGBA{100, 100, 100, 255}) ||
		at(x1, Gap+3) != (color.RGBA{200, 200, 200, 255}) || at(x1+3, Gap) != Background {
		t.Errorf("grey tile: %v %v %v %v", at(x1, Gap), at(x1+2, Gap+2), at(x1, Gap+3), at(x1+3, Gap))
	}
	if at(Gap, Gap+6+Gap) != Background {
		t.Errorf("nil tile not empty")
	}
	if s := ContactSheet(nil, 0, 0); s.Bounds().Dx() != Gap || s.Bounds().Dy() != Gap {
		t.Errorf("empty sheet %v", s.Bounds())
	}
	if s := ContactSheet([]image.Image{red, red, red, red, red}, 0, 1); s.Bounds().Dx() != 3*2+4*Gap {
		t.Errorf("default columns: %v", s.Bounds())
	}
}

func TestScaleFor(t *testing.T) {
	for _, tc := range []struct{ tw, cols, min, want int }{
		{28, 8, 256, 2}, // 8*28+18 = 242 < 256; 8*56+18 = 466
		{32, 8, 256, 1}, // 8*32+18 = 274
		{64, 1, 256, 4}, // 64*4+4 = 260; 64*3+4 = 196
		{300, 1, 256, 1},
		{0, 0, 256, 1},
	} {
		if got := ScaleFor(tc.tw, tc.cols, tc.min); got != tc.want {
			t.Errorf("ScaleFor(%d,%d,%d) = %d, want %d", tc.tw, tc.cols, tc.min, got, tc.want)
		}
	}
}
