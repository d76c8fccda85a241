package mnist

import (
	"image"
	"math"
	"testing"

	"latentedit/dataset"
)

// bar draws a filled parallelogram: rows y0…y0+h-1, each w pixels wide,
// starting at x0 and moving shear pixels right per row upwards.
func bar(x0, y0, w, h int, shear float64) []uint8 {
	pix := make([]uint8, Side*Side)
	for y := y0; y < y0+h; y++ {
		off := int(math.Round(shear * float64(y0+h-1-y)))
		for x := x0 + off; x < x0+off+w; x++ {
			pix[y*Side+x] = 255
		}
	}
	return pix
}

func TestMeasureBars(t *testing.T) {
	for _, w := range []int{1, 2, 3, 4, 6} {
		m := Measure(bar(10, 4, w, 18, 0), Side)
		t.Logf("upright bar %d px wide: thickness %.3f", w, m.Thickness)
		if math.Abs(m.Thickness-float64(w)) > 0.06*float64(w) {
			t.Errorf("upright bar %d px wide: thickness %.4f", w, m.Thickness)
		}
		if math.Abs(m.Slant) > 1e-9 {
			t.Errorf("upright bar: slant %.4f, want 0", m.Slant)
		}
		// A uniform bar of side s has standard deviation s/√12: 4σ = s·4/√12.
		if want := 18 * 4 / math.Sqrt(12); math.Abs(m.Height-want) > 0.05 {
			t.Errorf("bar 18 px tall: height %.3f, want %.3f", m.Height, want)
		}
	}
	// A right-leaning stroke reads a positive slant, a left-leaning one a
	// negative slant, and deskewing keeps its width that of the upright one.
	up := Measure(bar(8, 4, 3, 18, 0), Side)
	right := Measure(bar(4, 4, 3, 18, 0.5), Side)
	left := Measure(bar(14, 4, 3, 18, -0.5), Side)
	if !(right.Slant > 0.4 && right.Slant < 0.6) || !(left.Slant < -0.4 && left.Slant > -0.6) {
		t.Errorf("slant: right-leaning %.3f, left-leaning %.3f; want about ±0.5", right.Slant, left.Slant)
	}
	if math.Abs(right.Width-up.Width) > 0.35 || math.Abs(left.Width-up.Width) > 0.35 {
		t.Errorf("width after deskew: upright %.3f, right %.3f, left %.3f", up.Width, right.Width, left.Width)
	}
	// Its rows are 3 px wide; across the stroke it is 3·cos(atan 0.5) px.
	if want := 3 / math.Sqrt(1.25); math.Abs(right.Thickness-want) > 0.1*want {
		t.Errorf("slanted bar 3 px wide: thickness %.3f, want %.3f", right.Thickness, want)
	}
	// Diagonal strokes read the same whichever way they lean: their saddle
	// cells (two ink pixels touching at a corner, on a grey ground that
	// puts the crossings off the edges' midpoints) are joined the same way
	// for "/" as for "\".
	slash, back := make([]uint8, Side*Side), make([]uint8, Side*Side)
	for y := 3; y < 25; y++ {
		for x := 3; x < 25; x++ {
			slash[y*Side+x], back[y*Side+x] = 102, 102
		}
	}
	for i := 4; i < 24; i++ {
		slash[i*Side+(27-i)], back[i*Side+i] = 255, 255
	}
	if a, b := Measure(slash, Side).Thickness, Measure(back, Side).Thickness; math.Abs(a-b) > 1e-9 {
		t.Errorf("a 1 px diagonal: thickness %.4f leaning right, %.4f leaning left", a, b)
	}
	if a, b := outline(slash, Side), outline(back, Side); math.Abs(a-b) > 1e-9 {
		t.Errorf("a 1 px diagonal: outline %.4f leaning right, %.4f leaning left", a, b)
	}
	if m := Measure(make([]uint8, Side*Side), Side); m != (Morphometry{}) {
		t.Errorf("blank image: %+v", m)
	}
}

// The digits carry their measures; thicker strokes of the same digit read
// thicker. Fashion-MNIST keeps its one factor.
func TestMNISTCarriesMorphometry(t *testing.T) {
	ds, err := Open("mnist", dataset.Options{Split: "test", N: 200})
	if err != nil {
		t.Fatal(err)
	}
	if f := ds.Factors(); len(f) != 5 || f[0] != "label" || f[1] != "thickness" {
		t.Fatalf("factors %v", f)
	}
	var sums [4]float64
	for i := range ds.Len() {
		img, lab, err := ds.Sample(i)
		if err != nil {
			t.Fatal(err)
		}
		if len(lab) != 5 {
			t.Fatalf("sample %d: %d labels", i, len(lab))
		}
		if i < 20 { // a digit drawn with a thicker pen reads thicker
			pix := img.(*image.Gray).Pix
			if d := Measure(dilate(pix), Side).Thickness; !(d > float64(lab[1])+0.5) {
				t.Errorf("sample %d: thickness %.2f, dilated %.2f", i, lab[1], d)
			}
		}
		for k := range 4 {
			sums[k] += float64(lab[1+k]) / float64(ds.Len())
		}
	}
	// MNIST digits are strokes of 2–4 px in a 20×20 box (4σ of a uniform
	// 20 px extent is 23 px).
	if !(sums[0] > 1.5 && sums[0] < 4.5) || !(sums[2] > 4 && sums[2] < 16) || !(sums[3] > 10 && sums[3] < 26) || math.Abs(sums[1]) > 0.5 {
		t.Errorf("mean thickness %.2f, slant %.2f, width %.2f, height %.2f: not digit-like", sums[0], sums[1], sums[2], sums[3])
	}
}

// dilate is a 3×3 maximum filter: the digit drawn with a pen 2 px wider.
func dilate(pix []uint8) []uint8 {
	out := make([]uint8, len(pix))
	for y := 0; y < Side; y++ {
		for x := 0; x < Side; x++ {
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					if u, v := x+dx, y+dy; u >= 0 && v >= 0 && u < Side && v < Side {
						out[y*Side+x] = max(out[y*Side+x], pix[v*Side+u])
					}
				}
			}
		}
	}
	return out
}
