package main

import (
	"bytes"
	"encoding/json"
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
