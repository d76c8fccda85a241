package mnist

import (
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"latentedit/dataset"
)

func meanByLabel(t *testing.T, d *Dataset) (means [10]float64, counts [10]int) {
	t.Helper()
	var sums [10]float64
	for i := 0; i < d.Len(); i++ {
		l := d.Label(i)
		counts[l]++
		for _, p := range d.images.Image(i) {
			sums[l] += float64(p)
		}
	}
	for l := range means {
		if counts[l] > 0 {
			means[l] = sums[l] / float64(counts[l]*Side*Side)
		}
	}
	return means, counts
}

func TestMNISTTrain(t *testing.T) {
	ds, err := dataset.Open("mnist", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := ds.(*Dataset)
	if d.Len() != 60000 {
		t.Fatalf("Len %d, want 60000", d.Len())
	}
	if h, w, c := d.Shape(); h != 28 || w != 28 || c != 1 {
		t.Fatalf("shape %d %d %d", h, w, c)
	}
	if f := d.Factors(); len(f) != 5 || f[0] != "label" {
		t.Fatalf("factors %v", f)
	}
	means, counts := meanByLabel(t, d)
	want := [10]int{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}
	if counts != want {
		t.Fatalf("label counts %v, want %v", counts, want)
	}
	// A "1" has far less ink than a "0".
	if !(means[1] < 0.75*means[0]) {
		t.Fatalf("mean intensity of 1s %.1f not well below 0s %.1f", means[1], means[0])
	}
	for l, m := range means {
		if m < 5 || m > 80 {
			t.Errorf("mean intensity of digit %d is %.1f, not digit-like", l, m)
		}
	}
	img, lab, err := d.Sample(0)
	if err != nil {
		t.Fatal(err)
	}
	if lab[0] != 5 { // the first MNIST training image is a 5
		t.Errorf("label of sample 0 is %v, want 5", lab[0])
	}
	g := img.(*image.Gray)
	if g.Bounds() != image.Rect(0, 0, 28, 28) {
		t.Fatalf("bounds %v", g.Bounds())
	}
	// Borders are background, the centre has ink.
	if g.GrayAt(0, 0).Y != 0 || g.GrayAt(27, 27).Y != 0 {
		t.Errorf("corner not black")
	}
	g.Pix[0] = 99 // the sample is a copy: this must not change the dataset
	img2, _, _ := d.Sample(0)
	if img2.(*image.Gray).Pix[0] != 0 {
		t.Errorf("Sample returned shared pixels")
	}
	if _, _, err := d.Sample(60000); err == nil {
		t.Error("Sample(60000) did not fail")
	}
	pix, labels, err := dataset.Batch(d, []int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(pix) != 2*28*28 || len(labels) != 2*5 || labels[5] != 0 { // the second image is a 0
		t.Fatalf("batch: %d pixels, labels %v", len(pix), labels)
	}
}

func TestMNISTTestSplitAndN(t *testing.T) {
	d, err := Open("mnist", dataset.Options{Split: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 10000 || d.Split() != "test" {
		t.Fatalf("Len %d split %s", d.Len(), d.Split())
	}
	_, counts := meanByLabel(t, d)
	want := [10]int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}
	if counts != want {
		t.Fatalf("test label counts %v, want %v", counts, want)
	}
	small, err := Open("mnist", dataset.Options{Split: "test", N: 100})
	if err != nil {
		t.Fatal(err)
	}
	if small.Len() != 100 {
		t.Fatalf("N=100 gives Len %d", small.Len())
	}
	if small.images != d.images {
		t.Error("second open decoded the files again instead of using the cache")
	}
	if _, err := Open("mnist", dataset.Options{Split: "validation"}); err == nil || !strings.Contains(err.Error(), "validation") {
		t.Fatalf("bad split: %v", err)
	}
}

func TestFashionMNIST(t *testing.T) {
	dir := FashionDir
	if env := os.Getenv(EnvFashionDir); env != "" {
		dir = env
	}
	if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err != nil {
		// scripts/test.sh installs the package; a missing one is a broken setup, not a pass.
		t.Fatalf("Fashion-MNIST not installed (apt-get install %s, or run scripts/test.sh): %v", FashionPackage, err)
	}
	ds, err := dataset.Open("fashion-mnist", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := ds.(*Dataset)
	if d.Len() != 60000 || d.Name() != "fashion-mnist" {
		t.Fatalf("Len %d name %s", d.Len(), d.Name())
	}
	means, counts := meanByLabel(t, d)
	for l, c := range counts {
		if c != 6000 {
			t.Errorf("class %d has %d images, want 6000", l, c)
		}
	}
	// Class 1 (trouser) is thinner than class 2 (pullover).
	if !(means[1] < means[2]) {
		t.Errorf("trousers (%.1f) not darker on average than pullovers (%.1f)", means[1], means[2])
	}
	test, err := Open("fashion-mnist", dataset.Options{Split: "test", N: 10})
	if err != nil {
		t.Fatal(err)
	}
	if test.Len() != 10 {
		t.Fatalf("test N=10 Len %d", test.Len())
	}
}

func TestMissingDir(t *testing.T) {
	empty := t.TempDir()
	_, err := Open("mnist", dataset.Options{Dir: empty})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(empty, "train-images-idx3-ubyte.gz")) {
		t.Fatalf("missing dir: %v", err)
	}

	t.Setenv(EnvMNISTDir, empty)
	_, err = Open("mnist", dataset.Options{})
	if err == nil || !strings.Contains(err.Error(), EnvMNISTDir) {
		t.Fatalf("missing env dir: %v", err)
	}

	t.Setenv(EnvFashionDir, "")
	if _, statErr := os.Stat(FashionDir); statErr != nil {
		_, err = Open("fashion-mnist", dataset.Options{})
		if err == nil || !strings.Contains(err.Error(), "apt-get install "+FashionPackage) {
			t.Fatalf("missing fashion: %v", err)
		}
	}
	t.Setenv(EnvFashionDir, empty)
	_, err = Open("fashion-mnist", dataset.Options{Split: "test"})
	if err == nil || !strings.Contains(err.Error(), "apt-get install "+FashionPackage) || !strings.Contains(err.Error(), "t10k-images-idx3-ubyte.gz") {
		t.Fatalf("missing fashion: %v", err)
	}
}

func TestCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	// Valid header but truncated data.
	if err := os.WriteFile(filepath.Join(dir, "train-images-idx3-ubyte"), []byte{0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3}, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "train-labels-idx1-ubyte"), []byte{0, 0, 8, 1, 0, 0, 0, 2, 1, 2}, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open("mnist", dataset.Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), "train-images-idx3-ubyte") {
		t.Fatalf("corrupt file: %v", err)
	}
}

// Outside the module `go list -m` fails; the module cache is searched instead.
func TestFindGoMNISTOutsideModule(t *testing.T) {
	want, err := goMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	if _, err := goCmd("list", "-m", "-f", "{{.Dir}}", GoMNISTModule); err == nil {
		t.Skip("go list -m works outside the module here")
	}
	got, err := findGoMNIST()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(got) != "data" || !strings.Contains(got, "!go!m!n!i!s!t@") {
		t.Fatalf("found %s (go list says %s)", got, want)
	}
	if _, err := os.Stat(filepath.Join(got, "t10k-labels-idx1-ubyte.gz")); err != nil {
		t.Fatal(err)
	}
}
