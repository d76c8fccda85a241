// Package invert finds the latent of a given picture, for every model: one
// inversion that the web editor's uploads, `latentedit invert`, `edit
// --image` and `pseudocase --image` share.
//
// An inversion has two parts. A guess: the VAE's own encoder, or for a GAN an
// encoder trained for that generator (TrainEncoder: generated pictures with
// known latents, image → latent) and saved beside the model
// (WORK/encoder-SPACE/), or, when there is none, a few seeded starts. Then a
// refinement: Adam on the latent, descending the pixel error through the
// frozen generator with a small pull towards the prior (Refiner). A style
// generator is inverted in W+ by default (one code per style layer, through
// generator.Model.InSpace), a DCGAN in Z.
package invert

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // uploads and --image take JPEG too
	_ "image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/image/draw"

	"latentedit/dataset"
)

// Crop is how a picture was made the model's size: the square
// [X0, X0+Side) × [Y0, Y0+Side) of the SourceW×SourceH picture, scaled to
// Size×Size. Model pixel (u, v) (centre u+0.5) covers source point
// (X0 + (u+0.5)·Side/Size, Y0 + (v+0.5)·Side/Size): ToSource maps it back.
type Crop struct {
	SourceW int `json:"source_width"`
	SourceH int `json:"source_height"`
	X0      int `json:"x0"`
	Y0      int `json:"y0"`
	Side    int `json:"side"`
	Size    int `json:"size"`
}

// ToSource maps a point of the model-size picture (pixel coordinates, the
// top-left corner at 0) to the source picture's coordinates.
func (c Crop) ToSource(u, v float64) (x, y float64) {
	s := float64(c.Side) / float64(c.Size)
	return float64(c.X0) + u*s, float64(c.Y0) + v*s
}

// Fit centre-crops img to a square and resizes it (bilinear) to w×h, the way
// a given picture is made the model's size before it is inverted, and says
// which square it took.
func Fit(img image.Image, w, h int) (*image.RGBA, Crop) {
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	// Not image.Rect(x0, y0, 0, 0): Rect sorts its corners, which made this
	// the top-left square instead of the centre one.
	min0 := image.Pt(b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2)
	crop := image.Rectangle{Min: min0, Max: min0.Add(image.Pt(side, side))}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.BiLinear.Scale(dst, dst.Bounds(), img, crop, draw.Src, nil)
	return dst, Crop{SourceW: b.Dx(), SourceH: b.Dy(), X0: min0.X - b.Min.X, Y0: min0.Y - b.Min.Y, Side: side, Size: w}
}

// Picture is a given picture at the model's size.
type Picture struct {
	Path   string
	Crop   Crop
	Pixels []float32 // [H, W, C] in [-1, 1]
}

// MaxSide bounds a given picture's sides, checked before its pixels are
// decoded (a 20000×20000 PNG is 1.6 GB of pixels).
const MaxSide = 8192

// MaxPictures bounds one run over a directory.
const MaxPictures = 10000

// ErrNotImage is wrapped by the error for a file that is not a PNG or JPEG.
var ErrNotImage = errors.New("not a PNG or JPEG picture")

// Decode reads one PNG or JPEG from raw, refusing a picture with a side
// above MaxSide before its pixels are decoded.
func Decode(name string, raw []byte) (image.Image, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w (%v)", name, ErrNotImage, err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > MaxSide || cfg.Height > MaxSide {
		return nil, fmt.Errorf("%s: %dx%d pixels: want sides of 1 to %d", name, cfg.Width, cfg.Height, MaxSide)
	}
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w (%v)", name, ErrNotImage, err)
	}
	return img, nil
}

// ReadPictures reads path — one PNG/JPEG, or a directory whose .png, .jpg
// and .jpeg files are read in name order — at the model's size h×w×c. Every
// picture is read before any is returned, so a bad one stops the run before
// it has written anything; the error names the file.
func ReadPictures(path string, h, w, c int) ([]Picture, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		files = files[:0]
		for _, e := range entries {
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if !e.IsDir() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		slices.Sort(files)
		if len(files) == 0 {
			return nil, fmt.Errorf("%s: no .png, .jpg or .jpeg file in the directory", path)
		}
		if len(files) > MaxPictures {
			return nil, fmt.Errorf("%s: %d pictures; one run takes at most %d", path, len(files), MaxPictures)
		}
	}
	out := make([]Picture, 0, len(files))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		img, err := Decode(f, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, NewPicture(f, img, h, w, c))
	}
	return out, nil
}

// NewPicture fits img to h×w×c.
func NewPicture(name string, img image.Image, h, w, c int) Picture {
	fit, crop := Fit(img, w, h)
	pix := make([]float32, h*w*c)
	dataset.ToFloats(fit, c, pix)
	return Picture{Path: name, Crop: crop, Pixels: pix}
}

// PSNR is the peak signal-to-noise ratio in dB of a mean squared error of
// pixels in [-1, 1] (peak-to-peak 2): 10·log10(4/mse), the usual PSNR of
// the same pictures in [0, 1].
func PSNR(mse float64) float64 {
	if mse <= 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(4/mse)
}

// MSE is the mean squared difference of a and b.
func MSE(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return s / float64(len(a))
}
