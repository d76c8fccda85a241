package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad requests are refused before any model is opened, with exit status 2
// and a message naming the flag and the problem.
func TestPseudocaseBadFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--add", "detachment:0.6"}, "--model is required"},
		{[]string{"--model", "fundus-gan", "--out", "x"}, "--add: empty"},
		{[]string{"--model", "fundus-gan", "--out", "x", "--add", "detachment:2@45"}, "out of (0, 1]"},
		{[]string{"--model", "fundus-gan", "--out", "x", "--add", "haemorrhage:3@10"}, "only a detachment"},
		{[]string{"--model", "fundus-gan", "--out", "x", "--add", "tumour:1"}, "unknown lesion"},
		{[]string{"--model", "fundus-gan", "--out", "x", "--add", "cup:0.7", "--shard", "2/2"}, "--shard \"2/2\""},
		{[]string{"--model", "fundus-gan", "--out", "x", "--add", "cup:0.7", "--shard", "one/two"}, "want i/N"},
		{[]string{"--model", "fundus-gan", "--add", "cup:0.7"}, "--out is required"},
		{[]string{"--model", "fundus-gan", "--out", "x", "--add", "cup:0.7", "--n", "0"}, "--n"},
		{[]string{"--report-runs", "a,b"}, "--out is required"},
		{[]string{"--merge", "a,b"}, "--out is required"},
		{[]string{"--merge", "a,b", "--report-runs", "c", "--out", "x"}, "give one"},
		{[]string{"--model", "fundus-gan", "--check-segmenter", "1000"}, "want N@SEED"},
		{[]string{"--model", "fundus-gan", "--check-segmenter", "0@777"}, "want N@SEED"},
		{[]string{"--model", "fundus-gan", "--train-segmenter", "--segmenter-schedule", "wobbly"}, "lr schedule \"wobbly\""},
		{[]string{"--model", "fundus-gan", "--out", "x", "--add", "detachment:0.6", "--region"}, "needs the detachment's position"},
		{[]string{"--model", "fundus-gan", "--out", "x", "--add", "cup:0.7", "--mask", "m.png"}, "needs --region"},
		{[]string{"--model", "fundus-gan", "--out", "x", "--add", "cup:0.7", "--region", "--region-goal", "NaN"}, "goal NaN"},
		{[]string{"--model", "fundus-gan", "--out", "x", "--add", "cup:0.7", "--region", "--region-steps", "-1"}, "-1 refinement steps"},
		{[]string{"--model", "fundus-gan", "--out", "x", "--add", "cup:0.7", "--region", "--region-margin", "40"}, "margin 40"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(append([]string{"pseudocase"}, c.args...), &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), exitUsage, c.want)
		}
	}
}

// --check-segmenter scores the shipped segmenter on renders with exact
// masks: JSON with a Dice per channel and disc counts for every image.
func TestPseudocaseCheckSegmenter(t *testing.T) {
	t.Chdir(t.TempDir())
	var out, errb bytes.Buffer
	if code := run([]string{"pseudocase", "--model", "fundus-gan", "--check-segmenter", "16@777", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var sc struct {
		N          int                `json:"n"`
		Seed       int64              `json:"seed"`
		Dice       map[string]float64 `json:"dice"`
		DiscCounts [4]int             `json:"disc_counts"`
	}
	if err := json.Unmarshal(out.Bytes(), &sc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out.String())
	}
	if sc.N != 16 || sc.Seed != 777 || len(sc.Dice) != 3 || sc.DiscCounts[0]+sc.DiscCounts[1]+sc.DiscCounts[2]+sc.DiscCounts[3] != 16 ||
		!(sc.Dice["vessels"] > 0.5 && sc.Dice["vessels"] <= 1) {
		t.Errorf("scores %+v", sc)
	}
}

func TestPseudocaseReportOfMissingRun(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"pseudocase", "--report-runs", t.TempDir(), "--out", t.TempDir()}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "summary.json") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

// The embedded fundus GAN ships everything a run needs (editor, oracle,
// segmenter, calibration): two cases are made with nothing trained or
// calibrated at run time, and nothing is written outside --out.
func TestPseudocaseOnEmbeddedModel(t *testing.T) {
	t.Chdir(t.TempDir())
	var out, errb bytes.Buffer
	code := run([]string{"pseudocase", "--model", "fundus-gan", "--add", "detachment:0.6@45", "--n", "2", "--out", "pc", "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if s := errb.String(); strings.Contains(s, "calibrating") || strings.Contains(s, "oracle fundus") {
		t.Errorf("something was trained or calibrated at run time: %s", s)
	}
	if _, err := os.Stat("work"); err == nil {
		t.Error("the run wrote a work folder")
	}
	var sum struct {
		Cases  int                `json:"cases"`
		Before map[string]float64 `json:"mean_before"`
		After  map[string]float64 `json:"mean_after"`
		Dice   float64            `json:"mean_vessel_dice_outside_lesion"`
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("stdout is not the JSON summary: %v\n%s", err, out.String())
	}
	if sum.Cases != 2 || len(sum.After) != 5 || !(sum.Dice >= 0 && sum.Dice <= 1) {
		t.Errorf("summary %+v", sum)
	}
	csv, err := os.ReadFile(filepath.Join("pc", "cases.csv"))
	if err != nil || strings.Count(string(csv), "\n") != 3 {
		t.Errorf("cases.csv: %v\n%s", err, csv)
	}
	for _, f := range []string{"000001-before.png", "000001-after.png", "000001-after-vessels.png", "000001-lesion-area.png"} {
		if _, err := os.Stat(filepath.Join("pc", "cases", f)); err != nil {
			t.Error(err)
		}
	}
}

// A region run with a user's mask: haemorrhages go where the mask is white,
// the composite and region images are written, and a mask of the wrong
// size is refused with nothing left behind.
func TestPseudocaseRegionWithMask(t *testing.T) {
	t.Chdir(t.TempDir())
	img := image.NewGray(image.Rect(0, 0, 64, 64))
	for y := 30; y < 44; y++ {
		for x := 14; x < 30; x++ {
			img.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	writePNGFile(t, "mask.png", img)
	writePNGFile(t, "small.png", image.NewGray(image.Rect(0, 0, 20, 20)))
	var out, errb bytes.Buffer
	code := run([]string{"pseudocase", "--model", "fundus-gan", "--add", "haemorrhage:2", "--n", "2", "--region", "--region-steps", "5",
		"--mask", "mask.png", "--out", "pc", "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var sum struct {
		Region struct {
			Options string  `json:"options"`
			Area    float64 `json:"mean_region_area_fraction"`
		} `json:"region"`
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("stdout: %v\n%s", err, out.String())
	}
	// The mask's 16×14 pixels grown by the default margin of 2: 20×18.
	if want := 20.0 * 18 / 4096; math.Abs(sum.Region.Area-want) > 1e-9 || !strings.Contains(sum.Region.Options, "mask=mask.png") {
		t.Errorf("region %+v, want area %.4f and the mask named", sum.Region, want)
	}
	for _, f := range []string{"000001-region.png", "000001-composite.png"} {
		if _, err := os.Stat(filepath.Join("pc", "cases", f)); err != nil {
			t.Error(err)
		}
	}
	errb.Reset()
	code = run([]string{"pseudocase", "--model", "fundus-gan", "--add", "haemorrhage:2", "--n", "2", "--region", "--mask", "small.png", "--out", "pc2"}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "it is 20x20; want 64x64") {
		t.Errorf("mask of the wrong size: exit %d, %s", code, errb.String())
	}
	if _, err := os.Stat("pc2"); err == nil {
		t.Error("a refused run left its output directory")
	}
}

func writePNGFile(t *testing.T, path string, img image.Image) {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
