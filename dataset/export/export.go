// Package export writes a dataset to disk for inspection or for other tools:
// one PNG per sample, a CSV of the factors and a contact sheet.
package export

import (
	"encoding/csv"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"latentedit/dataset"
	"latentedit/internal/atomicfile"
)

const (
	// Gap is the space in pixels between the tiles of a contact sheet and
	// around them.
	Gap = 2
	// ContactMax is the number of images Write puts on the contact sheet.
	ContactMax = 64
	// ContactMinWidth is the smallest width of the contact sheet Write makes.
	ContactMinWidth = 256
)

// Background is the colour of the gaps of a contact sheet.
var Background = color.RGBA{255, 255, 255, 255}

// Write exports the first n samples of ds (all of them when n <= 0 or n > Len)
// into outDir, which is created if needed:
//
//	outDir/images/000000.png, 000001.png, ...
//	outDir/labels.csv     header "file,<factor names>", one row per image, the
//	                      file column relative to outDir ("images/000000.png")
//	outDir/contact.png    the first up to 64 images in a grid, with 2 px gaps,
//	                      upscaled so the sheet is at least 256 px wide
//
// Every file is written atomically. progress, when not nil, is called after
// each image with the number done and the total.
func Write(ds dataset.Dataset, n int, outDir string, progress func(done, total int)) error {
	if n <= 0 || n > ds.Len() {
		n = ds.Len()
	}
	imgDir := filepath.Join(outDir, "images")
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	factors := ds.Factors()
	rows := make([][]string, 0, n+1)
	rows = append(rows, append([]string{"file"}, factors...))
	var sheet []image.Image
	for i := 0; i < n; i++ {
		img, labels, err := ds.Sample(i)
		if err != nil {
			return fmt.Errorf("export: dataset %s: sample %d: %w", ds.Name(), i, err)
		}
		if len(labels) != len(factors) {
			return fmt.Errorf("export: dataset %s: sample %d has %d labels for %d factors", ds.Name(), i, len(labels), len(factors))
		}
		name := fmt.Sprintf("%06d.png", i)
		if err := WritePNG(filepath.Join(imgDir, name), img); err != nil {
			return err
		}
		row := make([]string, 0, 1+len(labels))
		row = append(row, "images/"+name)
		for _, v := range labels {
			row = append(row, strconv.FormatFloat(float64(v), 'g', -1, 32))
		}
		rows = append(rows, row)
		if len(sheet) < ContactMax {
			sheet = append(sheet, img)
		}
		if progress != nil {
			progress(i+1, n)
		}
	}
	if err := WriteCSV(filepath.Join(outDir, "labels.csv"), rows); err != nil {
		return err
	}
	return WriteContact(filepath.Join(outDir, "contact.png"), sheet)
}

// WriteCSV writes rows as a CSV file atomically.
func WriteCSV(path string, rows [][]string) error {
	if err := atomicfile.Write(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		if err := cw.WriteAll(rows); err != nil {
			return err
		}
		return cw.Error()
	}); err != nil {
		return fmt.Errorf("export: %s: %w", path, err)
	}
	return nil
}

// WriteContact writes the contact sheet Write makes of imgs (the first
// ContactMax of them, in a square grid, at least ContactMinWidth wide) to
// path; nothing when imgs is empty.
func WriteContact(path string, imgs []image.Image) error {
	if len(imgs) == 0 {
		return nil
	}
	imgs = imgs[:min(len(imgs), ContactMax)]
	cols := int(math.Ceil(math.Sqrt(float64(len(imgs)))))
	tw, _ := tileSize(imgs)
	return WritePNG(path, ContactSheet(imgs, cols, ScaleFor(tw, cols, ContactMinWidth)))
}

// WritePNG encodes img as PNG into path atomically.
func WritePNG(path string, img image.Image) error {
	if err := atomicfile.Write(path, func(w io.Writer) error { return png.Encode(w, img) }); err != nil {
		return fmt.Errorf("export: %s: %w", path, err)
	}
	return nil
}

// ScaleFor returns the smallest integer scale (at least 1) that makes a
// contact sheet of cols tiles tileW pixels wide at least minWidth wide.
func ScaleFor(tileW, cols, minWidth int) int {
	if tileW <= 0 || cols <= 0 {
		return 1
	}
	need := minWidth - (cols+1)*Gap
	s := (need + cols*tileW - 1) / (cols * tileW)
	return max(s, 1)
}

func tileSize(imgs []image.Image) (w, h int) {
	for _, im := range imgs {
		if im == nil {
			continue
		}
		b := im.Bounds()
		w, h = max(w, b.Dx()), max(h, b.Dy())
	}
	return w, h
}

// ContactSheet lays imgs out in a grid of cols columns (ceil(sqrt(len)) when
// cols <= 0), each image enlarged scale times (nearest neighbour; scale <= 0
// means 1), with Gap pixels of Background between the tiles and around them.
// Tiles are as large as the largest image; smaller images sit in the top-left
// corner of theirs, nil images leave their tile empty.
func ContactSheet(imgs []image.Image, cols, scale int) *image.RGBA {
	if cols <= 0 {
		cols = max(1, int(math.Ceil(math.Sqrt(float64(len(imgs))))))
	}
	if scale <= 0 {
		scale = 1
	}
	rows := (len(imgs) + cols - 1) / cols
	tw, th := tileSize(imgs)
	tw, th = tw*scale, th*scale
	if len(imgs) == 0 {
		cols = 0
	}
	sheet := image.NewRGBA(image.Rect(0, 0, cols*tw+(cols+1)*Gap, rows*th+(rows+1)*Gap))
	for i := 0; i < len(sheet.Pix); i += 4 {
		sheet.Pix[i], sheet.Pix[i+1], sheet.Pix[i+2], sheet.Pix[i+3] = Background.R, Background.G, Background.B, Background.A
	}
	for k, im := range imgs {
		if im == nil {
			continue
		}
		x0 := Gap + (k%cols)*(tw+Gap)
		y0 := Gap + (k/cols)*(th+Gap)
		b := im.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.RGBAModel.Convert(im.At(x, y)).(color.RGBA)
				px, py := x0+(x-b.Min.X)*scale, y0+(y-b.Min.Y)*scale
				for dy := 0; dy < scale; dy++ {
					off := sheet.PixOffset(px, py+dy)
					for dx := 0; dx < scale; dx++ {
						p := sheet.Pix[off+4*dx : off+4*dx+4 : off+4*dx+4]
						p[0], p[1], p[2], p[3] = c.R, c.G, c.B, c.A
					}
				}
			}
		}
	}
	return sheet
}
