package figure

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"

	"golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"latentedit/internal/atomicfile"
)

// LabelledGrid writes tiles (rows × columns of equal-sized images) as one
// PNG with a label left of each row and above each column, every tile
// upscaled by scale with nearest neighbours. A nil tile is drawn as a grey
// square with a dash: "this method has no such direction" must look
// different from "the edit did nothing".
func LabelledGrid(path string, rowLabels, colLabels []string, tiles [][]image.Image, scale int) error {
	if len(tiles) == 0 || len(tiles) != len(rowLabels) {
		return fmt.Errorf("labelled grid %s: %d rows for %d row labels", path, len(tiles), len(rowLabels))
	}
	var tw, th int
	for i, row := range tiles {
		if len(row) != len(colLabels) {
			return fmt.Errorf("labelled grid %s: row %d has %d tiles for %d column labels", path, i, len(row), len(colLabels))
		}
		for _, t := range row {
			if t != nil && tw == 0 {
				tw, th = t.Bounds().Dx(), t.Bounds().Dy()
			}
		}
	}
	if tw == 0 {
		return fmt.Errorf("labelled grid %s: every tile is empty", path)
	}
	scale = max(scale, 1)
	face := basicfont.Face7x13
	left := 0
	for _, l := range rowLabels {
		left = max(left, font.MeasureString(face, l).Ceil())
	}
	left += 12
	const top, gap = 22, 4
	cw, ch := tw*scale+gap, th*scale+gap
	W, H := left+len(colLabels)*cw, top+len(tiles)*ch
	sheet := image.NewRGBA(image.Rect(0, 0, W, H))
	draw.Draw(sheet, sheet.Bounds(), image.White, image.Point{}, draw.Src)
	text := func(s string, x, y int) {
		d := font.Drawer{Dst: sheet, Src: image.Black, Face: face, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	for j, l := range colLabels {
		x := left + j*cw + (tw*scale-font.MeasureString(face, l).Ceil())/2
		text(l, max(x, left+j*cw), top-8)
	}
	grey := &image.Uniform{C: color.Gray{Y: 210}}
	for i, row := range tiles {
		y0 := top + i*ch
		text(rowLabels[i], 4, y0+th*scale/2+4)
		for j, t := range row {
			r := image.Rect(left+j*cw, y0, left+j*cw+tw*scale, y0+th*scale)
			if t == nil {
				draw.Draw(sheet, r, grey, image.Point{}, draw.Src)
				c := r.Min.Add(image.Pt(r.Dx()/2, r.Dy()/2))
				draw.Draw(sheet, image.Rect(c.X-r.Dx()/6, c.Y-1, c.X+r.Dx()/6, c.Y+2), image.Black, image.Point{}, draw.Src)
				continue
			}
			draw.NearestNeighbor.Scale(sheet, r, t, t.Bounds(), draw.Src, nil)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, sheet); err != nil {
		return fmt.Errorf("labelled grid %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, buf.Bytes(), atomicfile.DefaultPerm)
}
