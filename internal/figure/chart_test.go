package figure

import (
	"image"
	"image/color"
	"math"
	"path/filepath"
	"testing"

	"latentedit/internal/pngtest"
)

func TestBarPanels(t *testing.T) {
	p := filepath.Join(t.TempDir(), "b.png")
	err := BarPanels(p, "err", []Panel{
		{Title: "latent", Names: []string{"linear", "warped"}, Values: []float64{0, 0.5}},
		{Title: "image", Names: []string{"linear", "warped"}, Values: []float64{math.NaN(), 2e-7}},
		{Title: "log", Names: []string{"linear", "warped"}, Values: []float64{0, 2e-2}, LogFloor: 1e-9},
	})
	if err != nil {
		t.Fatal(err)
	}
	if img := pngtest.Read(t, p); img.Bounds().Dx() < 3*img.Bounds().Dy() {
		t.Fatalf("three panels side by side should be wide: %v", img.Bounds())
	}
	// On a log scale, 0 sits at the floor and 2e-2 is 7.3 decades above it.
	pn := Panel{LogFloor: 1e-9}
	if h0, h := pn.height(0), pn.height(2e-2); h0 != 0 || math.Abs(h-math.Log10(2e7)) > 1e-12 {
		t.Fatalf("log heights %g %g", h0, h)
	}
	if err := BarPanels(p, "", []Panel{{Names: []string{"a"}, Values: []float64{1, 2}}}); err == nil {
		t.Fatal("names and values of different lengths accepted")
	}
}

// The heat map's colours follow the sign: a strongly positive cell is red,
// a strongly negative one blue, at the cells' places.
func TestHeatMapColours(t *testing.T) {
	p := filepath.Join(t.TempDir(), "h.png")
	if err := HeatMap(p, "", []string{"d0", "d1"}, []string{"a", "b"}, [][]float64{{1, 0}, {0, -1}}, 0); err != nil {
		t.Fatal(err)
	}
	img := pngtest.Read(t, p)
	var red, blue int
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r > 40000 && g < 20000 && bl < 30000 {
				red++
			}
			if bl > 40000 && r < 30000 && g < 30000 {
				blue++
			}
		}
	}
	if red < 500 || blue < 500 {
		t.Fatalf("red %d, blue %d pixels: cells not coloured by sign", red, blue)
	}
	if err := HeatMap(p, "", []string{"d0"}, []string{"a", "b"}, [][]float64{{1}}, 0); err == nil {
		t.Fatal("ragged matrix accepted")
	}
}

func TestLabelledGrid(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l.png")
	tile := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range tile.Pix {
		tile.Pix[i] = 255
	}
	tile.Set(0, 0, color.RGBA{255, 0, 0, 255})
	err := LabelledGrid(p, []string{"linear", "warped"}, []string{"o", "+smile"}, [][]image.Image{{tile, tile}, {tile, nil}}, 4)
	if err != nil {
		t.Fatal(err)
	}
	img := pngtest.Read(t, p)
	if img.Bounds().Dx() < 2*8*4 || img.Bounds().Dy() < 2*8*4 {
		t.Fatalf("grid %v smaller than its tiles", img.Bounds())
	}
	if err := LabelledGrid(p, []string{"a"}, []string{"o"}, [][]image.Image{{nil}}, 2); err == nil {
		t.Fatal("grid of empty tiles accepted")
	}
	if err := LabelledGrid(p, []string{"a", "b"}, []string{"o"}, [][]image.Image{{tile}}, 2); err == nil {
		t.Fatal("row labels and rows of different counts accepted")
	}
}
