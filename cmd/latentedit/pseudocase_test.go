package main

import (
	"bytes"
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
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(append([]string{"pseudocase"}, c.args...), &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), exitUsage, c.want)
		}
	}
}

func TestPseudocaseReportOfMissingRun(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"pseudocase", "--report-runs", t.TempDir(), "--out", t.TempDir()}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "summary.json") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}
