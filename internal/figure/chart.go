package figure

import (
	"bytes"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"latentedit/internal/atomicfile"
)

// Panel is one bar chart: a bar per name, each with its value.
type Panel struct {
	Title  string
	Names  []string
	Values []float64
	// LogFloor > 0 draws the bars on a log scale from LogFloor up: errors
	// that span 1e-8 (float rounding) to 1e-2 (a real effect) all show, and
	// an exact 0 sits at the floor.
	LogFloor float64
}

// height maps a value to its bar height: itself, or decades above the floor.
func (pn Panel) height(v float64) float64 {
	if pn.LogFloor <= 0 {
		return v
	}
	return math.Log10(math.Max(v, pn.LogFloor) / pn.LogFloor)
}

// logTicks labels decades on a log-scale panel's y axis.
type logTicks struct{ floor float64 }

func (l logTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for d := math.Floor(min); d <= math.Ceil(max); d++ {
		ts = append(ts, plot.Tick{Value: d, Label: fmt.Sprintf("1e%d", int(math.Round(math.Log10(l.floor)+d)))})
	}
	return ts
}

// BarPanels writes bar charts side by side. Each panel has its own y axis
// because what the panels measure (latent versus image commutativity, say)
// lives on different scales, and every bar carries its value printed above
// it, so a bar too small to see still reads as a number. Non-finite values
// are drawn as 0 and labelled "n/a".
func BarPanels(path, yLabel string, panels []Panel) error {
	if len(panels) == 0 {
		return fmt.Errorf("bar chart %s: no panels", path)
	}
	const pw, ph = 4 * vg.Inch, 3.4 * vg.Inch
	w := vg.Length(len(panels)) * pw
	img := vgimg.NewWith(vgimg.UseWH(w, ph), vgimg.UseDPI(96), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	for i, pn := range panels {
		if len(pn.Names) != len(pn.Values) || len(pn.Names) == 0 {
			return fmt.Errorf("bar chart %s: panel %q has %d names for %d values", path, pn.Title, len(pn.Names), len(pn.Values))
		}
		p := plot.New()
		p.Title.Text = pn.Title
		if i == 0 {
			p.Y.Label.Text = yLabel
		}
		p.Add(plotter.NewGrid())
		var labels plotter.XYLabels
		top := 0.0
		for j, v := range pn.Values {
			vals := make(plotter.Values, len(pn.Values))
			txt := "n/a"
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				vals[j], txt = pn.height(v), shortNum(v)
				top = math.Max(top, vals[j])
			}
			// One chart per bar so each method keeps its colour.
			b, err := plotter.NewBarChart(vals, vg.Points(28))
			if err != nil {
				return fmt.Errorf("bar chart %s: %w", path, err)
			}
			b.Color = plotutil.Color(j)
			b.LineStyle.Width = 0
			p.Add(b)
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(j), Y: vals[j]})
			labels.Labels = append(labels.Labels, txt)
		}
		l, err := centredLabels(labels, draw.YBottom, 8)
		if err != nil {
			return fmt.Errorf("bar chart %s: %w", path, err)
		}
		p.Add(l)
		p.NominalX(pn.Names...)
		p.X.Tick.Label.Rotation = math.Pi / 5
		p.X.Tick.Label.XAlign = draw.XRight
		p.Y.Min = 0
		p.Y.Max = math.Max(top*1.18, 1e-9)
		if pn.LogFloor > 0 {
			p.Y.Max = math.Ceil(top + 0.5)
			p.Y.Tick.Marker = logTicks{floor: pn.LogFloor}
		}
		c := draw.Crop(dc, vg.Length(i)*pw, vg.Length(i)*pw+pw-w, 0, 0)
		p.Draw(c)
	}
	return writeCanvas(img, path)
}

// HeatMap writes a matrix as a labelled heat map with each value printed
// in its cell: rows (e.g. directions) down, columns (e.g. factors) across.
// The colour scale is diverging and symmetric around 0, clipped at the
// largest |value| (or at clip when clip > 0).
func HeatMap(path, title string, rows, cols []string, v [][]float64, clip float64) error {
	if len(v) != len(rows) || len(rows) == 0 {
		return fmt.Errorf("heat map %s: %d rows of values for %d labels", path, len(v), len(rows))
	}
	lim := clip
	for i := range v {
		if len(v[i]) != len(cols) {
			return fmt.Errorf("heat map %s: row %d has %d values for %d columns", path, i, len(v[i]), len(cols))
		}
		if clip <= 0 {
			for _, x := range v[i] {
				if !math.IsNaN(x) {
					lim = math.Max(lim, math.Abs(x))
				}
			}
		}
	}
	lim = math.Max(lim, 1e-9)
	pal := moreland.SmoothBlueRed()
	pal.SetMin(-lim)
	pal.SetMax(lim)
	p := plot.New()
	p.Title.Text = title
	var labels plotter.XYLabels
	for i := range v {
		for j, x := range v[i] {
			c := color.Color(color.Gray{Y: 200})
			txt := "n/a"
			if !math.IsNaN(x) && !math.IsInf(x, 0) {
				c, _ = pal.At(math.Max(-lim, math.Min(lim, x)))
				txt = shortNum(x)
			}
			y := float64(len(rows) - 1 - i)
			box, _ := plotter.NewPolygon(plotter.XYs{{X: float64(j) - .5, Y: y - .5}, {X: float64(j) + .5, Y: y - .5}, {X: float64(j) + .5, Y: y + .5}, {X: float64(j) - .5, Y: y + .5}})
			box.Color = c
			box.LineStyle.Width = 0
			p.Add(box)
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(j), Y: y})
			labels.Labels = append(labels.Labels, txt)
		}
	}
	l, err := centredLabels(labels, draw.YCenter, 7)
	if err != nil {
		return fmt.Errorf("heat map %s: %w", path, err)
	}
	p.Add(l)
	p.NominalX(cols...)
	rev := make([]string, len(rows))
	for i, r := range rows {
		rev[len(rows)-1-i] = r
	}
	p.NominalY(rev...)
	p.X.Tick.Label.Rotation = math.Pi / 4
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Min, p.X.Max = -.5, float64(len(cols))-.5
	p.Y.Min, p.Y.Max = -.5, float64(len(rows))-.5
	w := vg.Length(2.2+0.55*float64(len(cols))) * vg.Inch
	h := vg.Length(1.6+0.32*float64(len(rows))) * vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96), vgimg.UseBackgroundColor(color.White))
	p.Draw(draw.New(img))
	return writeCanvas(img, path)
}

// centredLabels makes value labels centred on their x, aligned on y as asked.
func centredLabels(labels plotter.XYLabels, yAlign draw.YAlignment, points float64) (*plotter.Labels, error) {
	l, err := plotter.NewLabels(labels)
	if err != nil {
		return nil, err
	}
	for k := range l.TextStyle {
		l.TextStyle[k].XAlign = draw.XCenter
		l.TextStyle[k].YAlign = yAlign
		l.TextStyle[k].Font.Size = vg.Points(points)
	}
	return l, nil
}

func writeCanvas(img *vgimg.Canvas, path string) error {
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, buf.Bytes(), atomicfile.DefaultPerm)
}

// shortNum prints a value in at most ~5 characters of precision: charts
// carry numbers from 1e-7 (a curvilinear commutator) to 10.
func shortNum(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a < 1e-3 || a >= 1e4:
		return fmt.Sprintf("%.1e", v)
	case a < 1:
		return fmt.Sprintf("%.3f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
