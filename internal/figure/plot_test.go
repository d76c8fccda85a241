package figure

import (
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestLinePlotWritesPNGAndSkipsNaN(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.png")
	err := LinePlot(p, "t", "x", "y", []Series{
		{Name: "a", X: []float64{1, 2, 3}, Y: []float64{1, math.NaN(), 2}},
		{Name: "b", X: []float64{1, 2}, Y: []float64{math.Inf(1), 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(p)
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 300 {
		t.Fatalf("plot PNG: %v %v", err, img)
	}
}

func TestGrid(t *testing.T) {
	p := filepath.Join(t.TempDir(), "g.png")
	imgs := []image.Image{image.NewGray(image.Rect(0, 0, 8, 8)), image.NewGray(image.Rect(0, 0, 8, 8))}
	if err := Grid(p, imgs, 2, 100); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(p)
	defer f.Close()
	img, _ := png.Decode(f)
	if img.Bounds().Dx() < 100 {
		t.Fatalf("grid %v narrower than asked", img.Bounds())
	}
	if err := Grid(p, nil, 2, 100); err == nil {
		t.Fatal("empty grid accepted")
	}
}

func TestCurvesRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.csv")
	c := NewCurves("loss", "acc")
	for s := 1; s <= 5; s++ {
		c.Add(s, []float64{1 / float64(s), float64(s) / 10})
	}
	if err := c.WriteCSV(p); err != nil {
		t.Fatal(err)
	}
	back := ReadCurves(p, 3, "loss", "acc")
	if len(back.Rows) != 3 || back.Rows[2][0] != 3 || back.Series("acc", "").Y[1] != 0.2 {
		t.Fatalf("read back %+v", back.Rows)
	}
	if other := ReadCurves(p, 10, "loss"); len(other.Rows) != 0 {
		t.Fatalf("rows of another width accepted: %v", other.Rows)
	}
	if missing := ReadCurves(filepath.Join(t.TempDir(), "none.csv"), 10, "loss"); len(missing.Rows) != 0 {
		t.Fatal("missing file gave rows")
	}
}
