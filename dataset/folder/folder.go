// Package folder provides the "folder" dataset: the PNG and JPEG files of a
// folder and its sub-folders, sorted by their path inside it, as RGB images
// without factors (hidden files and folders are skipped).
//
// Options.Dir is required. Options.Size > 0 makes every image Size×Size: the
// largest centred square is cropped and resized with an anti-aliased bilinear
// filter. With Size == 0 the images are used as they are and must all have the
// size of the first one. Options.N > 0 keeps only the first N files.
// Transparent pixels are composed over black; greyscale and paletted images
// become RGB.
package folder

import (
	"bytes"
	"fmt"
	"image"
	_ "image/jpeg" // register the JPEG decoder
	_ "image/png"  // register the PNG decoder
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/image/draw"

	"latentedit/dataset"
)

func init() {
	dataset.Register("folder", func(o dataset.Options) (dataset.Dataset, error) { return Open(o) })
}

// Extensions are the file name extensions (lower case) the dataset reads.
var Extensions = []string{".png", ".jpg", ".jpeg"}

// Dataset is an opened image folder.
type Dataset struct {
	dir   string
	files []string // full paths, sorted by name
	w, h  int
	size  int // 0: native size
}

// Open lists the images of o.Dir.
func Open(o dataset.Options) (*Dataset, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("folder: Options.Dir is required: the folder of PNG/JPEG images to read")
	}
	if o.Size < 0 || o.N < 0 {
		return nil, fmt.Errorf("folder: negative Size %d or N %d", o.Size, o.N)
	}
	var files []string
	err := filepath.WalkDir(o.Dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		hidden := strings.HasPrefix(e.Name(), ".") && path != o.Dir
		switch {
		case e.IsDir() && hidden:
			return filepath.SkipDir
		case e.IsDir() || hidden || !isImageName(e.Name()):
			return nil
		}
		rel, err := filepath.Rel(o.Dir, path)
		files = append(files, rel)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("folder: %w", err)
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("folder: %s holds no PNG or JPEG files (%s), sub-folders included", o.Dir, strings.Join(Extensions, ", "))
	}
	if o.N > 0 && o.N < len(files) {
		files = files[:o.N]
	}
	for i, f := range files {
		files[i] = filepath.Join(o.Dir, f)
	}
	d := &Dataset{dir: o.Dir, files: files, size: o.Size, w: o.Size, h: o.Size}
	if o.Size == 0 {
		cfg, err := decodeConfig(files[0])
		if err != nil {
			return nil, err
		}
		d.w, d.h = cfg.Width, cfg.Height
		if d.w <= 0 || d.h <= 0 {
			return nil, fmt.Errorf("folder: %s: empty image (%dx%d)", files[0], d.w, d.h)
		}
	}
	return d, nil
}

func isImageName(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, e := range Extensions {
		if ext == e {
			return true
		}
	}
	return false
}

func decodeConfig(path string) (image.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return image.Config{}, fmt.Errorf("folder: %w", err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return cfg, fmt.Errorf("folder: %s: cannot decode image header: %w", path, err)
	}
	return cfg, nil
}

// Name implements dataset.Dataset.
func (d *Dataset) Name() string { return "folder" }

// Dir is the folder read.
func (d *Dataset) Dir() string { return d.dir }

// Len implements dataset.Dataset.
func (d *Dataset) Len() int { return len(d.files) }

// Shape implements dataset.Dataset; c is always 3.
func (d *Dataset) Shape() (h, w, c int) { return d.h, d.w, 3 }

// Factors implements dataset.Dataset: none.
func (d *Dataset) Factors() []string { return nil }

// File returns the path of sample i.
func (d *Dataset) File(i int) string { return d.files[i] }

// Sample implements dataset.Dataset. It decodes file i, returning an opaque
// *image.RGBA of the dataset's shape and no labels.
func (d *Dataset) Sample(i int) (image.Image, []float32, error) {
	if i < 0 || i >= len(d.files) {
		return nil, nil, fmt.Errorf("folder: sample %d out of range [0, %d)", i, len(d.files))
	}
	path := d.files[i]
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("folder: %w", err)
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, nil, fmt.Errorf("folder: %s: cannot decode image: %w", path, err)
	}
	b := src.Bounds()
	if b.Empty() {
		return nil, nil, fmt.Errorf("folder: %s: empty image", path)
	}
	dst := image.NewRGBA(image.Rect(0, 0, d.w, d.h))
	if d.size > 0 {
		side := min(b.Dx(), b.Dy())
		x0 := b.Min.X + (b.Dx()-side)/2
		y0 := b.Min.Y + (b.Dy()-side)/2
		crop := image.Rect(x0, y0, x0+side, y0+side)
		if side == d.size {
			draw.Draw(dst, dst.Bounds(), src, crop.Min, draw.Src)
		} else {
			draw.BiLinear.Scale(dst, dst.Bounds(), src, crop, draw.Src, nil)
		}
	} else {
		if b.Dx() != d.w || b.Dy() != d.h {
			return nil, nil, fmt.Errorf("folder: %s is %dx%d but %s is %dx%d: set a Size to resize all images", path, b.Dx(), b.Dy(), d.files[0], d.w, d.h)
		}
		draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Src)
	}
	// Pixels are premultiplied: forcing alpha to opaque composes over black.
	for j := 3; j < len(dst.Pix); j += 4 {
		dst.Pix[j] = 255
	}
	return dst, []float32{}, nil
}
