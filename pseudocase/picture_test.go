package pseudocase

import (
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"latentedit/dataset"
	_ "latentedit/dataset/faces"
	inversion "latentedit/invert"
	"latentedit/workspace"
)

// shippedSegmenter is the fundus GAN's segmenter.
func shippedSegmenter(t *testing.T) (*workspace.Workspace, *Segmenter) {
	t.Helper()
	ws, err := workspace.Open("fundus-gan", "")
	if err != nil {
		t.Fatal(err)
	}
	dir, ok := SegmenterDir(ws)
	if !ok {
		t.Fatalf("no shipped segmenter in %s", dir)
	}
	seg, err := LoadSegmenter(dir, ws.Model.Backend())
	if err != nil {
		t.Fatal(err)
	}
	return ws, seg
}

func rendered(t *testing.T, name string, n int, seed int64) []float32 {
	t.Helper()
	ds, err := dataset.Open(name, dataset.Options{N: n, Seed: seed, Size: 64})
	if err != nil {
		t.Fatal(err)
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	pix, _, err := dataset.Batch(ds, idx)
	if err != nil {
		t.Fatal(err)
	}
	return pix
}

// TestCheckFundus: rendered retinas and the fundus GAN's pictures pass;
// rendered faces and a grey picture are refused as not fundus photographs.
func TestCheckFundus(t *testing.T) {
	ws, seg := shippedSegmenter(t)
	const n, sz = 8, 64 * 64 * 3
	gen, err := ws.Model.GenerateFloats(flat(ws.Model.Latents(5, n)), n)
	if err != nil {
		t.Fatal(err)
	}
	grey := make([]float32, sz)
	for _, tc := range []struct {
		name string
		pix  []float32
		ok   bool
	}{
		{"fundus", rendered(t, "fundus", n, 41), true},
		{"fundus-gan", gen, true},
		{"faces", rendered(t, "faces", n, 41), false},
		{"grey", grey, false},
	} {
		k := len(tc.pix) / sz
		st, err := seg.Predict(tc.pix, k)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < k; i++ {
			err := CheckFundus(tc.name, tc.pix[i*sz:(i+1)*sz], 64, st[i])
			if tc.ok && err != nil {
				t.Errorf("%s %d refused: %v", tc.name, i, err)
			}
			if !tc.ok && !errors.Is(err, ErrNotFundus) {
				t.Errorf("%s %d: %v, want ErrNotFundus", tc.name, i, err)
			}
			if i == 0 && err != nil {
				t.Logf("%v", err)
			}
		}
	}
}

func flat(zs [][]float32) []float32 {
	var out []float32
	for _, z := range zs {
		out = append(out, z...)
	}
	return out
}

// TestRunOnGivenPictures: two rendered retinas are inverted and edited;
// the CSV ends in the picture path, inversion PSNR and vessel Dice, and the
// summary has their means. A face among the pictures stops the run before
// anything is inverted or written.
func TestRunOnGivenPictures(t *testing.T) {
	tools, _ := throwawayTools(t)
	_, tools.Segmenter = shippedSegmenter(t)
	inv, err := inversion.New(tools.Model, nil)
	if err != nil {
		t.Fatal(err)
	}
	pix := rendered(t, "fundus", 2, 43)
	const sz = 64 * 64 * 3
	pics := []inversion.Picture{{Path: "a.png", Pixels: pix[:sz]}, {Path: "b.png", Pixels: pix[sz:]}}
	given, err := InvertGiven(tools, inv, pics, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "run")
	req, _ := ParseRequest("cup:0.7")
	sum, err := Run(tools, Options{Request: req, N: 99, Out: out, Pictures: given})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Cases != 2 || sum.Pictures != 2 || sum.InversionPSNR == nil || !(*sum.InversionDice >= 0 && *sum.InversionDice <= 1) {
		t.Fatalf("summary: %d cases, %d pictures, PSNR %v, Dice %v", sum.Cases, sum.Pictures, sum.InversionPSNR, sum.InversionDice)
	}
	f, _ := os.Open(filepath.Join(out, "cases.csv"))
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 3 {
		t.Fatalf("cases.csv: %v, %d rows", err, len(rows))
	}
	head, row := rows[0], rows[2]
	if strings.Join(head[len(head)-3:], ",") != "picture,inversion_psnr_db,inversion_vessel_dice" || row[len(row)-3] != "b.png" || row[1] != "" {
		t.Errorf("header %v, row %v", head, row)
	}
	if _, err := os.Stat(CaseFile(out, 1, "inverted")); err != nil {
		t.Error(err)
	}
	face := rendered(t, "faces", 1, 44)
	pics = append(pics, inversion.Picture{Path: "face.png", Pixels: face})
	if _, err := InvertGiven(tools, inv, pics, 3, nil); !errors.Is(err, ErrNotFundus) || !strings.Contains(err.Error(), "face.png") {
		t.Fatalf("a face among the pictures: %v", err)
	}
}
