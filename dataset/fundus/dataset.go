package fundus

import (
	"fmt"
	"image"
	"math/rand/v2"

	"latentedit/dataset"
)

// Defaults of the registered "fundus" dataset.
const (
	DefaultN    = 20000
	DefaultSize = 64
)

func init() {
	dataset.Register("fundus", open)
}

func open(opt dataset.Options) (dataset.Dataset, error) { return New(opt) }

// Dataset is the procedural fundus dataset: sample i is Render(Draw(rng(Seed, i))).
// Besides the dataset.Dataset interface it exposes the drawn Params and the
// masks of each sample, which pseudo-case generation and evaluation need.
type Dataset struct {
	n, size int
	seed    int64
}

// New opens the fundus dataset. Options used: N (default 20000), Seed, Size
// (64 by default, or 128). The dataset has no splits: use another Seed for a
// held-out set.
func New(opt dataset.Options) (*Dataset, error) {
	d := &Dataset{n: opt.N, size: opt.Size, seed: opt.Seed}
	if d.n == 0 {
		d.n = DefaultN
	}
	if d.n < 0 {
		return nil, fmt.Errorf("fundus: N must be positive, got %d", opt.N)
	}
	if d.size == 0 {
		d.size = DefaultSize
	}
	if d.size != 64 && d.size != 128 {
		return nil, fmt.Errorf("fundus: Size must be 64 or 128, got %d", opt.Size)
	}
	return d, nil
}

// Name implements dataset.Dataset.
func (d *Dataset) Name() string { return "fundus" }

// Len implements dataset.Dataset.
func (d *Dataset) Len() int { return d.n }

// Shape implements dataset.Dataset: size×size RGB.
func (d *Dataset) Shape() (h, w, c int) { return d.size, d.size, 3 }

// Factors implements dataset.Dataset; see FactorNames.
func (d *Dataset) Factors() []string { return FactorNames() }

// Params returns the parameters of sample i. Each sample has its own random
// stream seeded by (Seed, i), so samples can be generated in any order or shard.
func (d *Dataset) Params(i int) (Params, error) {
	if i < 0 || i >= d.n {
		return Params{}, fmt.Errorf("fundus: index %d out of range [0, %d)", i, d.n)
	}
	return Draw(rand.New(rand.NewPCG(uint64(d.seed), uint64(i)))), nil
}

// Sample implements dataset.Dataset: image i and its factor vector.
func (d *Dataset) Sample(i int) (image.Image, []float32, error) {
	p, err := d.Params(i)
	if err != nil {
		return nil, nil, err
	}
	img, _, _ := Render(p, d.size)
	return img, p.Vector(), nil
}

// Masks returns the vessel and lesion masks of sample i (255 inside).
func (d *Dataset) Masks(i int) (vessels, lesions *image.Gray, err error) {
	p, err := d.Params(i)
	if err != nil {
		return nil, nil, err
	}
	_, vessels, lesions = Render(p, d.size)
	return vessels, lesions, nil
}
