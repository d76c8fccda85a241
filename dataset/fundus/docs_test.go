package fundus

import (
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"latentedit/dataset"
)

// TestWriteDocs writes the illustration sheets docs/fundus-contact.png and
// docs/fundus-lesions.png. It only runs with LATENTEDIT_WRITE_DOCS=1 so that the
// normal test run never touches the working tree.
func TestWriteDocs(t *testing.T) {
	if os.Getenv("LATENTEDIT_WRITE_DOCS") != "1" {
		t.Skip("set LATENTEDIT_WRITE_DOCS=1 to write docs/fundus-*.png")
	}
	const size, scale, gap = 64, 2, 4
	dir := filepath.Join("..", "..", "docs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	// Contact sheet: 6×6 samples of the registered dataset configuration.
	ds, err := New(dataset.Options{N: 36, Size: size})
	if err != nil {
		t.Fatal(err)
	}
	var tiles [][]image.Image
	for r := range 6 {
		var row []image.Image
		for c := range 6 {
			img, _, err := ds.Sample(r*6 + c)
			if err != nil {
				t.Fatal(err)
			}
			row = append(row, img)
		}
		tiles = append(tiles, row)
	}
	writePNG(t, filepath.Join(dir, "fundus-contact.png"), sheet(tiles, size, scale, gap, 0))

	// Lesion sheet: one structure, each row varies one lesion; every cell is
	// image | vessel mask | lesion mask.
	base := Draw(rand.New(rand.NewPCG(7, 2))).WithoutLesions()
	var rows [][]Params
	for _, ang := range []float64{45, 225} {
		var row []Params
		for _, e := range []float64{0, 0.3, 0.6, 1} {
			p := base
			p.Detachment, p.DetachmentAngle = e, ang
			row = append(row, p)
		}
		rows = append(rows, row)
	}
	hs := []Point{{0.35, 0.3}, {0.65, 0.7}, {0.7, 0.3}, {0.3, 0.7}, {0.5, 0.2}, {0.55, 0.82}}
	var row []Params
	for _, k := range []int{0, 2, 4, 6} {
		p := base
		p.Haemorrhages = hs[:k]
		row = append(row, p)
	}
	rows = append(rows, row)
	row = nil
	for _, c := range []float64{0.2, 0.4, 0.6, 0.8} {
		p := base
		p.CupToDisc = c
		row = append(row, p)
	}
	rows = append(rows, row)
	tiles = nil
	for _, row := range rows {
		var tr []image.Image
		for _, p := range row {
			img, v, l := Render(p, size)
			tr = append(tr, img, v, l)
		}
		tiles = append(tiles, tr)
	}
	writePNG(t, filepath.Join(dir, "fundus-lesions.png"), sheet(tiles, size, scale, gap, 3))
}

// sheet lays tiles out on a grid, upscaled by scale (nearest neighbour), with
// an extra gap after every group tiles of a row (0: no grouping).
func sheet(tiles [][]image.Image, size, scale, gap, group int) *image.RGBA {
	cols := len(tiles[0])
	cell := size * scale
	extra := 0
	if group > 0 {
		extra = (cols/group - 1) * 3 * gap
	}
	w := cols*cell + (cols+1)*gap + extra
	h := len(tiles)*cell + (len(tiles)+1)*gap
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(out, out.Bounds(), image.NewUniform(color.RGBA{40, 40, 48, 255}), image.Point{}, draw.Src)
	for r, row := range tiles {
		for c, img := range row {
			ox := gap + c*(cell+gap)
			if group > 0 {
				ox += (c / group) * 3 * gap
			}
			oy := gap + r*(cell+gap)
			for y := range cell {
				for x := range cell {
					out.Set(ox+x, oy+y, img.At(x/scale, y/scale))
				}
			}
		}
	}
	return out
}

// writePNG writes atomically: a temporary file in the same folder, then rename,
// so a reader never sees a half-written image.
func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-fundus-*.png")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	if err := png.Encode(f, img); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Chmod(0o644); err != nil { // CreateTemp makes it private
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}
