package fundus

import (
	"bytes"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"testing"

	"latentedit/dataset"
)

// healthy returns a drawn structure without lesions.
func healthy(seed uint64) Params {
	return Draw(rand.New(rand.NewPCG(seed, 99))).WithoutLesions()
}

func TestDeterministic(t *testing.T) {
	p := Draw(rand.New(rand.NewPCG(1, 2)))
	p.Detachment, p.DetachmentAngle = 0.5, 120
	p.Haemorrhages = []Point{{0.3, 0.4}, {0.6, 0.6}}
	a, av, al := Render(p, 64)
	b, bv, bl := Render(p, 64)
	if !bytes.Equal(a.Pix, b.Pix) || !bytes.Equal(av.Pix, bv.Pix) || !bytes.Equal(al.Pix, bl.Pix) {
		t.Fatal("Render is not deterministic")
	}
	ds, err := New(dataset.Options{N: 10, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	i1, l1, _ := ds.Sample(3)
	i2, l2, _ := ds.Sample(3)
	i3, _, _ := ds.Sample(4)
	if !bytes.Equal(i1.(*image.RGBA).Pix, i2.(*image.RGBA).Pix) {
		t.Fatal("Sample(3) differs between calls")
	}
	for k := range l1 {
		if l1[k] != l2[k] {
			t.Fatal("labels of Sample(3) differ between calls")
		}
	}
	if bytes.Equal(i1.(*image.RGBA).Pix, i3.(*image.RGBA).Pix) {
		t.Fatal("Sample(3) and Sample(4) are identical")
	}
	other, _ := New(dataset.Options{N: 10, Seed: 6})
	i4, _, _ := other.Sample(3)
	if bytes.Equal(i1.(*image.RGBA).Pix, i4.(*image.RGBA).Pix) {
		t.Fatal("the seed does not change Sample(3)")
	}
}

// inFOV reports whether pixel (x, y) of a size×size image lies in the aperture.
func inFOV(x, y, size int) bool {
	fx := (float64(x)+0.5)/float64(size) - fovCX
	fy := (float64(y)+0.5)/float64(size) - fovCY
	return fx*fx+fy*fy <= fovR*fovR
}

// components labels 8-connected regions of non-zero pixels; it returns the
// label image (0 = background) and the number of components.
func components(m *image.Gray) ([]int, int) {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	lab := make([]int, w*h)
	n := 0
	var stack []int
	for s := range lab {
		if m.Pix[s] == 0 || lab[s] != 0 {
			continue
		}
		n++
		lab[s] = n
		stack = append(stack[:0], s)
		for len(stack) > 0 {
			k := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			x, y := k%w, k/w
			for _, d := range [][2]int{{1, 0}, {-1, 0}, {0, 1}, {0, -1}, {1, 1}, {1, -1}, {-1, 1}, {-1, -1}} {
				nx, ny := x+d[0], y+d[1]
				if nx < 0 || ny < 0 || nx >= w || ny >= h {
					continue
				}
				q := ny*w + nx
				if m.Pix[q] != 0 && lab[q] == 0 {
					lab[q] = n
					stack = append(stack, q)
				}
			}
		}
	}
	return lab, n
}

func TestVesselMask(t *testing.T) {
	for _, size := range []int{64, 128} {
		for seed := range uint64(8) {
			p := healthy(seed)
			_, v, _ := Render(p, size)
			fov, on, out := 0, 0, 0
			for y := range size {
				for x := range size {
					in := inFOV(x, y, size)
					if in {
						fov++
					}
					if v.Pix[y*size+x] != 0 {
						on++
						if !in {
							out++
						}
					}
				}
			}
			frac := float64(on) / float64(fov)
			if frac < 0.03 || frac > 0.25 {
				t.Errorf("size %d seed %d: vessels cover %.3f of the field, want 0.03–0.25", size, seed, frac)
			}
			if float64(out) > 0.02*float64(on) {
				t.Errorf("size %d seed %d: %d of %d vessel pixels outside the field of view", size, seed, out, on)
			}
			// Vessels leave the disc: the disc holds vessel pixels, and most
			// vessel pixels are connected to it.
			lab, _ := components(v)
			touch := map[int]bool{}
			dr := p.normalized().DiscRadius * float64(size)
			cx, cy := p.Disc.X*float64(size), p.Disc.Y*float64(size)
			for y := range size {
				for x := range size {
					dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
					if dx*dx+dy*dy < dr*dr && lab[y*size+x] != 0 {
						touch[lab[y*size+x]] = true
					}
				}
			}
			if len(touch) == 0 {
				t.Errorf("size %d seed %d: no vessel pixel on the optic disc", size, seed)
				continue
			}
			conn := 0
			for _, l := range lab {
				if touch[l] {
					conn++
				}
			}
			if float64(conn) < 0.7*float64(on) {
				t.Errorf("size %d seed %d: only %d of %d vessel pixels connected to the disc", size, seed, conn, on)
			}
		}
	}
}

// checkOnlyInsideLesion verifies that lesioned differs from healthy only where
// the lesion mask is set (image and vessel mask), and that it does differ
// inside. It returns the number of lesion pixels.
func checkOnlyInsideLesion(t *testing.T, name string, healthy, lesioned Params, size int) int {
	t.Helper()
	hi, hv, hl := Render(healthy, size)
	li, lv, ll := Render(lesioned, size)
	for _, px := range hl.Pix {
		if px != 0 {
			t.Fatalf("%s: healthy render has lesion pixels", name)
		}
	}
	nLes, changed := 0, 0
	for k := range ll.Pix {
		o := 4 * k
		d := absDiff(hi.Pix[o], li.Pix[o]) + absDiff(hi.Pix[o+1], li.Pix[o+1]) + absDiff(hi.Pix[o+2], li.Pix[o+2])
		if ll.Pix[k] == 0 {
			if d != 0 {
				t.Fatalf("%s: pixel %d changed outside the lesion mask", name, k)
			}
			if hv.Pix[k] != lv.Pix[k] {
				t.Fatalf("%s: vessel mask changed outside the lesion mask at pixel %d", name, k)
			}
			continue
		}
		nLes++
		if d > 30 {
			changed++
		}
	}
	if nLes == 0 {
		t.Fatalf("%s: empty lesion mask", name)
	}
	if float64(changed) < 0.6*float64(nLes) {
		t.Errorf("%s: only %d of %d lesion pixels visibly changed", name, changed, nLes)
	}
	return nLes
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

func TestDetachmentOnlyInsideLesion(t *testing.T) {
	prev := 0
	for _, e := range []float64{0.2, 0.5, 1} {
		h := healthy(3)
		l := h
		l.Detachment, l.DetachmentAngle = e, 200
		n := checkOnlyInsideLesion(t, "detachment", h, l, 64)
		if n <= prev {
			t.Errorf("extent %.1f: lesion area %d not larger than %d at the smaller extent", e, n, prev)
		}
		prev = n
	}
	h := healthy(4)
	l := h
	l.Detachment, l.DetachmentAngle = 0.7, 30
	l.Haemorrhages = []Point{{0.3, 0.6}, {0.6, 0.4}}
	checkOnlyInsideLesion(t, "detachment+haemorrhages 128", h, l, 128)
}

func TestDetachmentAngle(t *testing.T) {
	for _, e := range []float64{0.2, 0.6, 1} {
		for ang := 0.0; ang < 360; ang += 30 {
			p := healthy(5)
			p.Detachment, p.DetachmentAngle = e, ang
			_, _, l := Render(p, 64)
			var sx, sy, n float64
			for y := range 64 {
				for x := range 64 {
					if l.Pix[y*64+x] != 0 {
						sx += float64(x) + 0.5 - 32
						sy += 32 - (float64(y) + 0.5) // up is positive
						n++
					}
				}
			}
			if n == 0 {
				t.Fatalf("extent %.1f angle %.0f: empty lesion mask", e, ang)
			}
			got := math.Atan2(sy, sx) * 180 / math.Pi
			if d := math.Abs(angDiff(got*math.Pi/180, ang*math.Pi/180)) * 180 / math.Pi; d > 45 {
				t.Errorf("extent %.1f angle %.0f: lesion centroid at %.0f°", e, ang, got)
			}
		}
	}
}

func TestHaemorrhageBlobs(t *testing.T) {
	pos := []Point{{0.3, 0.3}, {0.7, 0.3}, {0.3, 0.7}, {0.7, 0.7}, {0.5, 0.18}, {0.5, 0.82}}
	h := healthy(6)
	for k := 0; k <= len(pos); k++ {
		p := h
		p.Haemorrhages = pos[:k]
		_, _, l := Render(p, 64)
		if _, n := components(l); n != k {
			t.Errorf("%d haemorrhages give %d lesion blobs", k, n)
		}
		if k > 0 {
			checkOnlyInsideLesion(t, "haemorrhages", h, p, 64)
		}
	}
}

// brightCup counts the pale (cup-coloured) pixels inside the disc.
func brightCup(p Params, size int) int {
	img, _, _ := Render(p, size)
	q := p.normalized()
	r := q.DiscRadius * float64(size)
	n := 0
	for y := range size {
		for x := range size {
			dx, dy := float64(x)+0.5-q.Disc.X*float64(size), float64(y)+0.5-q.Disc.Y*float64(size)
			if dx*dx+dy*dy > r*r {
				continue
			}
			o := y*img.Stride + 4*x
			// The cup is pale: high green and blue, unlike the orange rim.
			if img.Pix[o+1] > 170 && img.Pix[o+2] > 130 {
				n++
			}
		}
	}
	return n
}

func TestCupToDisc(t *testing.T) {
	for seed := range uint64(4) {
		p := healthy(seed)
		prev := -1
		_, v0, _ := Render(p, 64)
		for _, c := range []float64{0.2, 0.5, 0.8} {
			p.CupToDisc = c
			n := brightCup(p, 64)
			if n <= prev {
				t.Errorf("seed %d: cup-to-disc %.1f gives %d pale disc pixels, not more than %d", seed, c, n, prev)
			}
			prev = n
			if _, v, _ := Render(p, 64); !bytes.Equal(v.Pix, v0.Pix) {
				t.Errorf("seed %d: cup-to-disc changes the vessel mask", seed)
			}
		}
	}
}

func TestSize128(t *testing.T) {
	ds, err := New(dataset.Options{N: 5, Size: 128})
	if err != nil {
		t.Fatal(err)
	}
	if h, w, c := ds.Shape(); h != 128 || w != 128 || c != 3 {
		t.Fatalf("Shape = %d,%d,%d", h, w, c)
	}
	img, lab, err := ds.Sample(2)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 128 || b.Dy() != 128 {
		t.Fatalf("image is %v", b)
	}
	if len(lab) != len(ds.Factors()) {
		t.Fatalf("%d labels for %d factors", len(lab), len(ds.Factors()))
	}
	v, l, err := ds.Masks(2)
	if err != nil || v.Rect.Dx() != 128 || l.Rect.Dx() != 128 {
		t.Fatalf("Masks: %v %v %v", v.Rect, l.Rect, err)
	}
	if _, _, err := dataset.Batch(ds, []int{0, 1}); err != nil {
		t.Fatal(err)
	}
}

func TestOptionsAndErrors(t *testing.T) {
	for _, opt := range []dataset.Options{{Size: 32}, {Size: 65}, {Size: 256}, {N: -1}} {
		if _, err := dataset.Open("fundus", opt); err == nil {
			t.Errorf("Open(%+v) did not fail", opt)
		}
	}
	d, err := dataset.Open("fundus", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != DefaultN || d.Name() != "fundus" {
		t.Errorf("default dataset: Len %d Name %q", d.Len(), d.Name())
	}
	if h, _, _ := d.Shape(); h != 64 {
		t.Errorf("default size %d", h)
	}
	if len(d.Factors()) != 5 {
		t.Errorf("factors %v", d.Factors())
	}
	fd := d.(*Dataset)
	for _, i := range []int{-1, DefaultN, DefaultN + 7} {
		if _, _, err := fd.Sample(i); err == nil {
			t.Errorf("Sample(%d) did not fail", i)
		}
		if _, err := fd.Params(i); err == nil {
			t.Errorf("Params(%d) did not fail", i)
		}
		if _, _, err := fd.Masks(i); err == nil {
			t.Errorf("Masks(%d) did not fail", i)
		}
	}
	if _, _, err := fd.Sample(DefaultN - 1); err != nil {
		t.Errorf("last sample: %v", err)
	}
}

func TestDrawDistribution(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	const n = 4000
	det, noH := 0, 0
	for range n {
		p := Draw(r)
		if p.Detachment > 0 {
			det++
			if p.Detachment < 0.2 || p.Detachment > 1 || p.DetachmentAngle < 0 || p.DetachmentAngle >= 360 {
				t.Fatalf("detachment %v at %v", p.Detachment, p.DetachmentAngle)
			}
		}
		if len(p.Haemorrhages) == 0 {
			noH++
		}
		if len(p.Haemorrhages) > 6 {
			t.Fatalf("%d haemorrhages", len(p.Haemorrhages))
		}
		for _, h := range p.Haemorrhages {
			if dx, dy := h.X-fovCX, h.Y-fovCY; dx*dx+dy*dy > fovR*fovR {
				t.Fatalf("haemorrhage %v outside the field", h)
			}
		}
		if p.CupToDisc < 0.2 || p.CupToDisc > 0.8 {
			t.Fatalf("cup-to-disc %v", p.CupToDisc)
		}
		if m := p.MaculaCenter(); (m.X-0.5)*(m.X-0.5)+(m.Y-0.5)*(m.Y-0.5) > 0.3*0.3 {
			t.Fatalf("macula %v far from the centre", m)
		}
	}
	if f := float64(det) / n; f < 0.36 || f > 0.44 {
		t.Errorf("detachment in %.3f of draws, want about 0.4", f)
	}
	if f := float64(noH) / n; f < 0.46 || f > 0.54 {
		t.Errorf("no haemorrhage in %.3f of draws, want about 0.5", f)
	}
}

func TestVector(t *testing.T) {
	if got := FactorNames(); len(got) != 5 || got[0] != "detachment" || got[4] != "cup_to_disc" {
		t.Fatalf("FactorNames = %v", got)
	}
	p := Params{Detachment: 0.5, DetachmentAngle: 90, Haemorrhages: make([]Point, 3), CupToDisc: 0.6}
	v := p.Vector()
	want := []float32{0.5, 0, 0.5, 3, 0.6}
	for k := range want {
		if math.Abs(float64(v[k]-want[k])) > 1e-6 {
			t.Fatalf("Vector = %v, want %v", v, want)
		}
	}
	if v := (Params{CupToDisc: 0.3}).Vector(); v[0] != 0 || v[1] != 0 || v[2] != 0 {
		t.Fatalf("no detachment encodes as %v", v)
	}
}

func TestZeroParamsRender(t *testing.T) {
	img, v, _ := Render(Params{}, 64)
	if img.Rect.Dx() != 64 {
		t.Fatal("bad size")
	}
	on := 0
	for _, px := range v.Pix {
		if px != 0 {
			on++
		}
	}
	if on == 0 {
		t.Fatal("zero Params render without vessels")
	}
}

func BenchmarkRender64(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	ps := make([]Params, 64)
	for i := range ps {
		ps[i] = Draw(r)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Render(ps[i%len(ps)], 64)
	}
}

func BenchmarkRender128(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	ps := make([]Params, 64)
	for i := range ps {
		ps[i] = Draw(r)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Render(ps[i%len(ps)], 128)
	}
}

func TestSmallSizesAndConcurrency(t *testing.T) {
	for _, size := range []int{1, 7, 32} {
		img, v, l := Render(healthy(1), size)
		if img.Rect.Dx() != size || v.Rect.Dx() != size || l.Rect.Dx() != size {
			t.Fatalf("size %d: got %v", size, img.Rect)
		}
	}
	// Renders share pooled buffers; concurrent renders of mixed sizes must
	// give exactly the serial results.
	ps := make([]Params, 8)
	want := make([][]byte, len(ps))
	for i := range ps {
		ps[i] = Draw(rand.New(rand.NewPCG(3, uint64(i))))
		img, _, _ := Render(ps[i], 64+64*(i%2))
		want[i] = img.Pix
	}
	done := make(chan error, len(ps))
	for i := range ps {
		go func() {
			img, _, _ := Render(ps[i], 64+64*(i%2))
			if !bytes.Equal(img.Pix, want[i]) {
				done <- fmt.Errorf("concurrent render %d differs", i)
				return
			}
			done <- nil
		}()
	}
	for range ps {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func BenchmarkSample64(b *testing.B) {
	ds, err := New(dataset.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		if _, _, err := ds.Sample(i % ds.Len()); err != nil {
			b.Fatal(err)
		}
	}
}
