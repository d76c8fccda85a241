// Package dataset defines the one interface every image source of latentedit
// implements (procedural renderers, MNIST, Fashion-MNIST, image folders) and the
// helpers that turn samples into engine tensors and files.
//
// A Dataset is a fixed, indexable list: Sample(i) returns the same image and
// labels every time for the same dataset configuration and seed, so training runs
// can resume exactly and shards of work can be split by index.
package dataset

import (
	"fmt"
	"image"
	"image/color"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Dataset is an indexable, deterministic collection of images with optional
// ground-truth factors.
type Dataset interface {
	// Name is the registry name ("faces", "mnist", ...).
	Name() string
	// Len is the number of samples; procedural datasets report their configured size.
	Len() int
	// Shape is the image shape every sample has.
	Shape() (h, w, c int)
	// Factors names the label columns; empty when the dataset has none.
	// Classification datasets report their class as the factor "label"
	// (mnist also its shape measures after it).
	Factors() []string
	// Sample returns image i and its labels (len(labels) == len(Factors())).
	Sample(i int) (image.Image, []float32, error)
}

// Options configures a dataset when it is opened by name.
type Options struct {
	N             int    // number of samples for procedural datasets (0: the dataset's default)
	Seed          int64  // seed of procedural datasets
	Size          int    // image side for procedural datasets (0: default, 32 for faces, 64 for fundus)
	Split         string // "train" (default) or "test" for datasets that have splits
	Dir           string // folder for the "folder" dataset, or an override of a dataset's data location
	NoCorrelation bool   // faces: draw factors independently
}

// Opener opens a dataset with the given options.
type Opener func(Options) (Dataset, error)

var registry = map[string]Opener{}

// Register makes a dataset available to Open under name. It is called from the
// init functions of the dataset packages; registering a name twice panics
// because it is a programming error.
func Register(name string, open Opener) {
	if _, dup := registry[name]; dup {
		panic("dataset: Register called twice for " + name)
	}
	registry[name] = open
}

// Names lists the registered datasets, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Open opens the dataset registered under name.
func Open(name string, opt Options) (Dataset, error) {
	open, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("dataset: unknown dataset %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return open(opt)
}

// ToFloats writes img into dst (len h*w*c, HWC order) scaled to [-1, 1].
// Grey images (c == 1) use the luminance of img.
func ToFloats(img image.Image, c int, dst []float32) {
	b := img.Bounds()
	i := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if c == 1 {
				g := color.GrayModel.Convert(img.At(x, y)).(color.Gray)
				dst[i] = float32(g.Y)/127.5 - 1
				i++
				continue
			}
			r, g, bb, _ := img.At(x, y).RGBA()
			dst[i] = float32(r>>8)/127.5 - 1
			dst[i+1] = float32(g>>8)/127.5 - 1
			dst[i+2] = float32(bb>>8)/127.5 - 1
			i += 3
		}
	}
}

// FromFloats is the inverse of ToFloats: values in [-1, 1] (clamped), HWC order.
func FromFloats(src []float32, h, w, c int) image.Image {
	to8 := func(v float32) uint8 {
		v = (v + 1) * 127.5
		if v < 0 || v != v {
			return 0
		}
		if v > 255 {
			return 255
		}
		return uint8(v + 0.5)
	}
	if c == 1 {
		img := image.NewGray(image.Rect(0, 0, w, h))
		for i := 0; i < h*w; i++ {
			img.Pix[i] = to8(src[i])
		}
		return img
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < h*w; i++ {
		img.Pix[4*i] = to8(src[3*i])
		img.Pix[4*i+1] = to8(src[3*i+1])
		img.Pix[4*i+2] = to8(src[3*i+2])
		img.Pix[4*i+3] = 255
	}
	return img
}

// Batch renders samples idx of ds into one flat float32 slice [B, H, W, C] in
// [-1, 1] plus the labels [B, F]. Callers wrap it into an engine tensor.
func Batch(ds Dataset, idx []int) (pixels []float32, labels []float32, err error) {
	h, w, c := ds.Shape()
	nf := len(ds.Factors())
	pixels = make([]float32, len(idx)*h*w*c)
	labels = make([]float32, len(idx)*nf)
	for j, i := range idx {
		img, lab, err := ds.Sample(i)
		if err != nil {
			return nil, nil, fmt.Errorf("dataset %s: sample %d: %w", ds.Name(), i, err)
		}
		if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
			return nil, nil, fmt.Errorf("dataset %s: sample %d is %dx%d, want %dx%d", ds.Name(), i, b.Dx(), b.Dy(), w, h)
		}
		ToFloats(img, c, pixels[j*h*w*c:(j+1)*h*w*c])
		copy(labels[j*nf:(j+1)*nf], lab)
	}
	return pixels, labels, nil
}

// TensorBatch is Batch wrapped as engine tensors: images [B, H, W, C] and labels [B, F].
func TensorBatch(ds Dataset, idx []int) (images, labels *tensors.Tensor, err error) {
	pix, lab, err := Batch(ds, idx)
	if err != nil {
		return nil, nil, err
	}
	h, w, c := ds.Shape()
	images = tensors.FromFlatDataAndDimensions(pix, len(idx), h, w, c)
	labels = tensors.FromFlatDataAndDimensions(lab, len(idx), len(ds.Factors()))
	return images, labels, nil
}

// Select returns ds with only the factors keep accepts, in their order: the
// same images, fewer label columns. A judge that regresses factors (an
// oracle) selects the measurable ones of a dataset that also has a class.
func Select(ds Dataset, keep func(factor string) bool) Dataset {
	s := &selected{Dataset: ds}
	for i, f := range ds.Factors() {
		if keep(f) {
			s.cols = append(s.cols, i)
			s.names = append(s.names, f)
		}
	}
	return s
}

type selected struct {
	Dataset
	cols  []int
	names []string
}

func (s *selected) Factors() []string { return append([]string(nil), s.names...) }

func (s *selected) Sample(i int) (image.Image, []float32, error) {
	img, lab, err := s.Dataset.Sample(i)
	if err != nil {
		return nil, nil, err
	}
	out := make([]float32, len(s.cols))
	for j, c := range s.cols {
		out[j] = lab[c]
	}
	return img, out, nil
}
