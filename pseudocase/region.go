package pseudocase

import (
	"errors"
	"fmt"
	"image"
	"math"
	"os"

	"latentedit/dataset"
	"latentedit/dataset/fundus"
	inversion "latentedit/invert"
)

// A region-constrained pseudo-case (issue 16 item 2) names where its
// lesions go. The region is built from the request — a detachment's disc
// at its angle and extent, the optic disc for a cup, the area where blots
// are drawn for haemorrhages, or the user's mask — and the edit is refined
// so that the judges read the request while everything outside the region
// stays the original's (refine.go). A feathered composite with the
// original outside the region is scored beside the raw refined picture,
// with a seam score for both, so the composite hides nothing.

// Region defaults.
const (
	DefaultRegionMargin  = 2   // pixels the region is grown by
	DefaultRegionFeather = 1.5 // σ in pixels of the composite's soft edge
)

// ErrRegion is wrapped by every refusal of a region: a mask of the wrong
// size, a detachment without a position, a region that covers nothing.
var ErrRegion = errors.New("bad region")

// BuildRegion is the size×size region of request r on a retina whose
// structure is st: the union, grown by margin pixels, of each lesion's part
// — a detachment's disc (fundus.DetachmentRegion) inside the field of
// view, which needs the detachment's angle; the segmented optic disc for a
// cup; for haemorrhages, user when given, else the disc that holds every
// blot the renderer draws (fundus.HaemorrhageRegion). A user mask is
// always part of the region.
func BuildRegion(r Request, st Structure, size int, user []bool, margin int) ([]bool, error) {
	return buildRegion(r, st, size, user, margin, true)
}

// structureFree is the part of the region where the original's vessels and
// disc may change: the region without the haemorrhages' part. Blots cover
// a few pixels each, so the vessel tree and the disc are held under the
// whole haemorrhage area; a detachment or a cup does change them. It may
// be empty.
func structureFree(r Request, st Structure, size int, user []bool, margin int) ([]bool, error) {
	return buildRegion(r, st, size, user, margin, false)
}

func buildRegion(r Request, st Structure, size int, user []bool, margin int, haem bool) ([]bool, error) {
	if user != nil && len(user) != size*size {
		return nil, fmt.Errorf("%w: the mask has %d pixels, the model draws %dx%d", ErrRegion, len(user), size, size)
	}
	if margin < 0 {
		return nil, fmt.Errorf("%w: margin %d px", ErrRegion, margin)
	}
	out := make([]bool, size*size)
	fx, fy, fr := fundus.FieldOfView()
	// A pixel is in when any of it may be: the renderer marks a lesion
	// pixel when any supersample inside it is touched, so circles are
	// tested at pixel centres with half a pixel's diagonal of slack.
	slack := math.Sqrt2 / 2 / float64(size)
	circle := func(cx, cy, rad float64, inField bool) {
		rad += slack
		for y := 0; y < size; y++ {
			for x := 0; x < size; x++ {
				u, v := (float64(x)+0.5)/float64(size), (float64(y)+0.5)/float64(size)
				if math.Hypot(u-cx, v-cy) > rad || (inField && math.Hypot(u-fx, v-fy) > fr+slack) {
					continue
				}
				out[y*size+x] = true
			}
		}
	}
	for _, l := range r {
		switch l.Kind {
		case Detachment:
			if !l.HasAngle {
				return nil, fmt.Errorf("%w: a region edit needs the detachment's position (detachment:%g@DEGREES)", ErrRegion, l.Amount)
			}
			cx, cy, rad := fundus.DetachmentRegion(l.Amount, l.Angle)
			circle(cx, cy, rad+0.016, true) // the border's waves reach 0.016 beyond the circle
		case Cup:
			if !st.DiscFound {
				return nil, fmt.Errorf("%w: the segmenter finds no optic disc to put a cup in", ErrRegion)
			}
			for j, v := range st.Masks[ChanDisc] {
				out[j] = out[j] || v
			}
		case Haemorrhage:
			if user == nil && haem {
				cx, cy, rad := fundus.HaemorrhageRegion()
				circle(cx, cy, rad, true)
			}
		}
	}
	if haem { // a user's mask is where blots go
		for j, v := range user {
			out[j] = out[j] || v
		}
	}
	out = dilate(out, size, margin)
	n := 0
	for _, v := range out {
		if v {
			n++
		}
	}
	if n == 0 && haem {
		return nil, fmt.Errorf("%w: the region of %s covers no pixel", ErrRegion, r)
	}
	if n == len(out) {
		return nil, fmt.Errorf("%w: the region of %s covers the whole picture: nothing would be kept", ErrRegion, r)
	}
	return out, nil
}

// dilate grows m by k pixels (a (2k+1)² square).
func dilate(m []bool, size, k int) []bool {
	if k == 0 {
		return m
	}
	out := make([]bool, len(m))
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			if !m[y*size+x] {
				continue
			}
			for yy := max(0, y-k); yy <= min(size-1, y+k); yy++ {
				for xx := max(0, x-k); xx <= min(size-1, x+k); xx++ {
					out[yy*size+xx] = true
				}
			}
		}
	}
	return out
}

// ReadMask reads a user's region: a PNG or JPEG, white (luminance above one
// half) inside. It is the model's size×size, or the size of the given
// pictures (all of one size), which it is cropped and resized with as they
// were (inversion.Fit).
func ReadMask(path string, size int, pics []inversion.Picture) ([]bool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--mask: %w", err)
	}
	img, err := inversion.Decode(path, raw)
	if err != nil {
		return nil, fmt.Errorf("--mask: %w", err)
	}
	b := img.Bounds()
	if b.Dx() != size || b.Dy() != size {
		same := len(pics) > 0
		for _, p := range pics {
			same = same && p.Crop.SourceW == b.Dx() && p.Crop.SourceH == b.Dy()
		}
		if !same {
			want := fmt.Sprintf("%dx%d (the model's size)", size, size)
			if len(pics) > 0 {
				want += fmt.Sprintf(" or %dx%d (the picture's)", pics[0].Crop.SourceW, pics[0].Crop.SourceH)
			}
			return nil, fmt.Errorf("--mask %s: %w: it is %dx%d; want %s", path, ErrRegion, b.Dx(), b.Dy(), want)
		}
		var fitted image.Image
		fitted, _ = inversion.Fit(img, size, size)
		img = fitted
	}
	pix := make([]float32, size*size)
	dataset.ToFloats(img, 1, pix)
	m := make([]bool, size*size)
	n := 0
	for j := range m {
		m[j] = pix[j] > 0 // [-1, 1]: above one half of the range
		if m[j] {
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("--mask %s: %w: no pixel is white (the region is where the mask is light)", path, ErrRegion)
	}
	return m, nil
}

// Feather is the composite's weight of the edited picture: the region
// blurred by a Gaussian of σ sigma pixels (3σ truncated, separable), so
// the edit fades into the original over a few pixels instead of a hard
// cut. It is 0 far outside the region and 1 deep inside it.
func Feather(region []bool, size int, sigma float64) []float32 {
	a := make([]float64, len(region))
	for j, v := range region {
		if v {
			a[j] = 1
		}
	}
	if sigma <= 0 {
		return toF32(a)
	}
	k := int(math.Ceil(3 * sigma))
	w := make([]float64, 2*k+1)
	var sum float64
	for i := range w {
		d := float64(i - k)
		w[i] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += w[i]
	}
	for i := range w {
		w[i] /= sum
	}
	blur := func(src []float64, dx, dy int) []float64 {
		dst := make([]float64, len(src))
		for y := 0; y < size; y++ {
			for x := 0; x < size; x++ {
				var v float64
				for i, wi := range w {
					xx := min(size-1, max(0, x+(i-k)*dx)) // edges clamped: the border keeps its value
					yy := min(size-1, max(0, y+(i-k)*dy))
					v += wi * src[yy*size+xx]
				}
				dst[y*size+x] = v
			}
		}
		return dst
	}
	return toF32(blur(blur(a, 1, 0), 0, 1))
}

func toF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// Composite is alpha·edited + (1 − alpha)·original, per pixel of size×size
// pictures of c channels.
func Composite(edited, original []float32, alpha []float32, c int) []float32 {
	out := make([]float32, len(edited))
	for i := range out {
		a := alpha[i/c]
		out[i] = a*edited[i] + (1-a)*original[i]
	}
	return out
}

// Border is the band of pixels within one pixel of the region's edge, on
// either side: where a seam would show.
func Border(region []bool, size int) []bool {
	grown := dilate(region, size, 1)
	outside := make([]bool, len(region))
	for j, v := range region {
		outside[j] = !v
	}
	grownOut := dilate(outside, size, 1)
	out := make([]bool, len(region))
	for j := range out {
		out[j] = grown[j] && grownOut[j]
	}
	return out
}

// SeamEnergy is the mean squared gradient (forward differences, summed over
// the c channels, pixels in [-1, 1]) of a size×size picture over the band
// of pixels: a hard cut between an edit and the original shows as more
// energy along the region's border than a real lesion's edge has. NaN when
// the band is empty.
func SeamEnergy(pix []float32, size, c int, band []bool) float64 {
	var sum, n float64
	for y := 0; y < size-1; y++ {
		for x := 0; x < size-1; x++ {
			if !band[y*size+x] {
				continue
			}
			for k := 0; k < c; k++ {
				p := float64(pix[(y*size+x)*c+k])
				gx := float64(pix[(y*size+x+1)*c+k]) - p
				gy := float64(pix[((y+1)*size+x)*c+k]) - p
				sum += gx*gx + gy*gy
			}
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / n
}
