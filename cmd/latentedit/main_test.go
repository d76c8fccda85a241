package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUsageAndUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "train") {
		t.Fatalf("no args: code %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"frobnicate"}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Fatalf("unknown: code %d, stderr %q", code, errb.String())
	}
}

func TestNotImplementedExits2(t *testing.T) {
	for _, c := range []string{"evaluate", "serve", "pseudocase"} {
		var out, errb bytes.Buffer
		if code := run([]string{c}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "not implemented yet") {
			t.Errorf("%s: code %d, stderr %q", c, code, errb.String())
		}
	}
}

func TestDataWritesFiles(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run([]string{"data", "faces", "--n", "5", "--out", dir, "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("code %d: %s", code, errb.String())
	}
	for _, f := range []string{"labels.csv", "contact.png", "images/000004.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "labels.csv"))
	if lines := strings.Count(string(b), "\n"); lines != 6 || !strings.Contains(string(b), "smile") {
		t.Errorf("labels.csv has %d lines: %q", lines, b)
	}
}

func TestBadFlagsAndDataset(t *testing.T) {
	cases := [][]string{
		{"train", "--steps", "x", "--out", "d"},
		{"train"}, // --out missing
		{"data", "faces"},
	}
	for _, args := range cases {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitUsage {
			t.Errorf("%v: code %d, want %d (%s)", args, code, exitUsage, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"data", "nosuch", "--out", t.TempDir()}, &out, &errb); code != 1 || !strings.Contains(errb.String(), `unknown dataset "nosuch"`) {
		t.Errorf("unknown dataset: code %d, %s", code, errb.String())
	}
}
