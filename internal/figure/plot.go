// Package figure draws what a person looks at: image grids, line plots of
// training curves, bar panels and heat maps, and keeps the training curves
// (curves.csv) they are drawn from. Each function draws one thing and writes
// its file atomically. It sits low in the house (docs/architecture.md), so
// trainers and reports alike can draw without importing each other.
package figure

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"latentedit/dataset/export"
	"latentedit/internal/atomicfile"
)

// Series is one named curve of (x, y) points.
type Series struct {
	Name string
	X, Y []float64
}

// LinePlot writes a PNG line plot of the series to path. Non-finite points
// are dropped (a diverging loss must not break its own plot).
func LinePlot(path, title, xLabel, yLabel string, series []Series) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	sort.SliceStable(series, func(i, j int) bool { return series[i].Name < series[j].Name })
	for i, s := range series {
		pts := make(plotter.XYs, 0, len(s.X))
		for j := range s.X {
			if j < len(s.Y) && !math.IsNaN(s.Y[j]) && !math.IsInf(s.Y[j], 0) {
				pts = append(pts, plotter.XY{X: s.X[j], Y: s.Y[j]})
			}
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("plot %s: series %s: %w", path, s.Name, err)
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.Name, l)
	}
	p.Legend.Top = true
	return savePlot(p, path, 7*vg.Inch, 4*vg.Inch)
}

func savePlot(p *plot.Plot, path string, w, h vg.Length) error {
	c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96), vgimg.UseBackgroundColor(color.White))
	p.Draw(draw.New(c))
	return writeCanvas(c, path)
}

// Grid writes imgs as a PNG grid with cols columns, upscaled with nearest
// neighbours so that small (32×32) images stay legible: the sheet is at least
// minWidth pixels wide.
func Grid(path string, imgs []image.Image, cols, minWidth int) error {
	if len(imgs) == 0 {
		return fmt.Errorf("grid %s: no images", path)
	}
	scale := export.ScaleFor(imgs[0].Bounds().Dx(), cols, minWidth)
	sheet := export.ContactSheet(imgs, cols, scale)
	var buf bytes.Buffer
	if err := png.Encode(&buf, sheet); err != nil {
		return fmt.Errorf("grid %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, buf.Bytes(), atomicfile.DefaultPerm)
}

// Smooth returns s with Y replaced by its trailing moving average over k
// points: training curves are noisy step to step.
func Smooth(s Series, k int) Series {
	out := Series{Name: s.Name, X: s.X, Y: make([]float64, len(s.Y))}
	sum := 0.0
	for i, v := range s.Y {
		sum += v
		if i >= k {
			sum -= s.Y[i-k]
		}
		out.Y[i] = sum / float64(min(i+1, k))
	}
	return out
}
