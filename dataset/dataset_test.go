package dataset_test

import (
	"image"
	"strings"
	"testing"

	"latentedit/dataset"
	_ "latentedit/dataset/faces"
)

func TestUnknownDataset(t *testing.T) {
	_, err := dataset.Open("imagenet", dataset.Options{})
	if err == nil || !strings.Contains(err.Error(), "unknown dataset") || !strings.Contains(err.Error(), "faces") {
		t.Fatalf("err = %v", err)
	}
}

func TestFloatsRoundTrip(t *testing.T) {
	ds, err := dataset.Open("faces", dataset.Options{N: 3, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	img, _, _ := ds.Sample(1)
	buf := make([]float32, 32*32*3)
	dataset.ToFloats(img, 3, buf)
	back := dataset.FromFloats(buf, 32, 32, 3).(*image.RGBA)
	orig := img.(*image.RGBA)
	for i := range back.Pix {
		if back.Pix[i] != orig.Pix[i] {
			t.Fatalf("pixel byte %d: %d → %d", i, orig.Pix[i], back.Pix[i])
		}
	}
	x, lab, err := dataset.TensorBatch(ds, []int{0, 2})
	if err != nil || x.Shape().Dimensions[0] != 2 || lab.Shape().Dimensions[1] != len(ds.Factors()) {
		t.Fatalf("TensorBatch: %v %v %v", err, x, lab)
	}
}
