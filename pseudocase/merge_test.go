package pseudocase

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// secondsField is the one line of a summary that is wall time.
var secondsField = regexp.MustCompile(`"seconds": [^,\n]+`)

// sameRunFiles fails t unless dir b holds the same files as dir a, with
// the same cases.csv, cases.jsonl, case images and summary.json (seconds
// excepted). It returns b's summary.
func sameRunFiles(t *testing.T, a, b string) Summary {
	t.Helper()
	for _, f := range []string{"cases.csv", "cases.jsonl"} {
		x, err1 := os.ReadFile(filepath.Join(a, f))
		y, err2 := os.ReadFile(filepath.Join(b, f))
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs (%v, %v):\n%s\nwant\n%s", f, err1, err2, y, x)
		}
	}
	names := func(dir string) (n []string) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			n = append(n, e.Name())
		}
		return n
	}
	if na, nb := names(a), names(b); !reflect.DeepEqual(na, nb) {
		t.Errorf("%s holds %v, want %v", b, nb, na)
	}
	x, _ := os.ReadFile(filepath.Join(a, "summary.json"))
	y, err := os.ReadFile(filepath.Join(b, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if xs, ys := secondsField.ReplaceAll(x, []byte(`"seconds": 0`)), secondsField.ReplaceAll(y, []byte(`"seconds": 0`)); !bytes.Equal(xs, ys) {
		t.Errorf("summary.json differs beyond seconds:\n%s\nwant\n%s", ys, xs)
	}
	images := func(dir string) map[string][]byte {
		m := map[string][]byte{}
		files, _ := filepath.Glob(filepath.Join(dir, "cases", "*"))
		for _, f := range files {
			m[filepath.Base(f)], _ = os.ReadFile(f)
		}
		return m
	}
	ia, ib := images(a), images(b)
	if len(ia) == 0 || len(ia) != len(ib) {
		t.Errorf("%d case images, want %d", len(ib), len(ia))
	}
	for name, png := range ia {
		if !bytes.Equal(png, ib[name]) {
			t.Errorf("cases/%s differs", name)
		}
	}
	return readSummary(t, filepath.Join(b, "summary.json"))
}

func readSummary(t *testing.T, path string) Summary {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s Summary
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// copyDir copies the files of dir into a new temporary directory.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), raw, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return to
}

// rewrite replaces the file at path with change(its bytes).
func rewrite(t *testing.T, path string, change func([]byte) []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, change(raw), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMerge makes 5 cases whole and in 3 shards (0 and 1 in one directory,
// 2 in another), merges the shards and requires the whole run's files; then
// it spoils copies of the shards in every way Merge must refuse and checks
// that each refusal names the problem and leaves nothing behind.
func TestMerge(t *testing.T) {
	tools, _ := throwawayTools(t)
	req, _ := ParseRequest("haemorrhage:3,cup:0.7")
	opt := Options{Request: req, N: 5, Seed: 100}
	run := func(o Options) {
		t.Helper()
		if _, err := Run(tools, o); err != nil {
			t.Fatal(err)
		}
	}
	whole, a, b := t.TempDir(), t.TempDir(), t.TempDir()
	o := opt
	o.Shard, o.Out = Shard{0, 1}, whole
	run(o)
	for i, dir := range []string{a, a, b} {
		o.Shard, o.Out = Shard{i, 3}, dir
		run(o)
	}
	merged := filepath.Join(t.TempDir(), "merged")
	sum, err := Merge(merged, []string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	got := sameRunFiles(t, whole, merged)
	var seconds float64
	for i, dir := range []string{a, a, b} {
		seconds += readSummary(t, filepath.Join(dir, summaryName(Shard{i, 3}))).Seconds
	}
	if got.Seconds != seconds || sum.Seconds != seconds || sum.Cases != 5 || sum.ShardCount != 1 {
		t.Errorf("merged summary: %d cases, shard count %d, seconds %v (returned %v); want 5, 1 and the shards' sum %v",
			got.Cases, got.ShardCount, got.Seconds, sum.Seconds, seconds)
	}
	if err := WriteReport(t.TempDir(), []string{merged}); err != nil {
		t.Errorf("the report refuses the merged run: %v", err)
	}

	// More shards than cases: shard 0 is empty but has the header, and
	// shards 1 and 2 hold a case each.
	few := opt
	few.N, few.Shard, few.Out = 2, Shard{0, 1}, t.TempDir()
	run(few)
	fewShards := t.TempDir()
	for i := range 3 {
		o := few
		o.Shard, o.Out = Shard{i, 3}, fewShards
		run(o)
	}
	fewMerged := filepath.Join(t.TempDir(), "merged")
	if _, err := Merge(fewMerged, []string{fewShards}); err != nil {
		t.Fatal(err)
	}
	sameRunFiles(t, few.Out, fewMerged)

	// Shards of other runs, made for real: another seed, another --n, another
	// request. Each is shard 2/3, to stand in for b.
	other := func(change func(*Options)) string {
		o := opt
		change(&o)
		o.Shard, o.Out = Shard{2, 3}, t.TempDir()
		run(o)
		return o.Out
	}
	otherSeed := other(func(o *Options) { o.Seed = 101 })
	otherN := other(func(o *Options) { o.N = 6 })
	otherReq := other(func(o *Options) { o.Request, _ = ParseRequest("haemorrhage:2,cup:0.7") })
	otherStep := other(func(o *Options) { o.MaxStep = 3 })

	// Each refusal gets fresh copies of a and b to spoil; f names a file of
	// a shard in them.
	type dirs struct{ a, b string }
	f := func(dir, base, ext string, i int) string {
		return filepath.Join(dir, shardName(base, ext, Shard{i, 3}))
	}
	refusals := []struct {
		name  string
		in    func(d dirs) []string // the directories to merge; nil: a and b
		spoil func(d dirs)
		want  string
	}{
		{"missing shard", func(d dirs) []string { return []string{d.a} }, nil, "shard 2/3 is missing"},
		{"duplicate shard", func(d dirs) []string { return []string{d.a, d.b, copyDir(t, d.b)} }, nil, "shard 2/3 is in more than one directory"},
		{"directory given twice", func(d dirs) []string { return []string{d.a, d.b, d.a} }, nil, " is given twice"},
		{"another seed", func(d dirs) []string { return []string{d.a, otherSeed} }, nil, "seed is 101 in"},
		{"another --n", func(d dirs) []string { return []string{d.a, otherN} }, nil, "run_cases is 6 in"},
		{"another request", func(d dirs) []string { return []string{d.a, otherReq} }, nil, `request is "haemorrhage:2,cup:0.7" in`},
		{"another max step", func(d dirs) []string { return []string{d.a, otherStep} }, nil, "max_step is 3 in"},
		{"another split", nil, func(d dirs) {
			for _, x := range []struct{ base, ext string }{{"summary", "json"}, {"cases", "csv"}, {"cases", "jsonl"}} {
				os.Rename(f(d.b, x.base, x.ext, 2), filepath.Join(d.b, shardName(x.base, x.ext, Shard{2, 4})))
			}
		}, "split differently: 3 shards in"},
		{"renamed shard", nil, func(d dirs) {
			for _, x := range []struct{ base, ext string }{{"summary", "json"}, {"cases", "csv"}, {"cases", "jsonl"}} {
				os.Rename(f(d.a, x.base, x.ext, 1), f(d.b, x.base, x.ext, 1))
				os.Rename(f(d.b, x.base, x.ext, 2), f(d.a, x.base, x.ext, 1))
				os.Rename(f(d.b, x.base, x.ext, 1), f(d.b, x.base, x.ext, 2))
			}
		}, "says it is shard 2/3, its name says 1/3"},
		{"summary missing", nil, func(d dirs) { os.Remove(f(d.b, "summary", "json", 2)) }, "is incomplete: summary-0002-of-0003.json is missing"},
		{"CSV truncated", nil, func(d dirs) {
			rewrite(t, f(d.a, "cases", "csv", 1), func(raw []byte) []byte { return raw[:bytes.LastIndexByte(raw[:len(raw)-1], '\n')+1] })
		}, "cases-0001-of-0003.csv has 1 case rows, want 2: truncated?"},
		{"CSV cut in its last row", nil, func(d dirs) {
			rewrite(t, f(d.a, "cases", "csv", 1), func(raw []byte) []byte { return raw[:len(raw)-3] })
		}, "cases-0001-of-0003.csv has 1 case rows, want 2"},
		{"CSV edited", nil, func(d dirs) {
			rewrite(t, f(d.b, "cases", "csv", 2), func(raw []byte) []byte {
				return bytes.Replace(raw, []byte("haemorrhage:3,cup:0.7"), []byte("haemorrhage:3,cup:0.6"), 1)
			})
		}, "cases-0002-of-0003.csv is not the CSV of cases-0002-of-0003.jsonl"},
		{"CSV without its header", nil, func(d dirs) {
			rewrite(t, f(d.a, "cases", "csv", 0), func(raw []byte) []byte { return raw[bytes.IndexByte(raw, '\n')+1:] })
		}, "does not start with the header row"},
		{"CSV missing", nil, func(d dirs) { os.Remove(f(d.a, "cases", "csv", 0)) }, "shard 0/3 in DIR_A is incomplete"},
		{"exact cases truncated", nil, func(d dirs) {
			rewrite(t, f(d.a, "cases", "jsonl", 1), func(raw []byte) []byte { return raw[:bytes.IndexByte(raw, '\n')+1] })
		}, "cases-0001-of-0003.jsonl has 1 cases, want 2 (cases [1, 3)): truncated?"},
		{"exact cases missing", nil, func(d dirs) { os.Remove(f(d.b, "cases", "jsonl", 2)) }, "cases-0002-of-0003.jsonl: no such file"},
		{"case image missing", nil, func(d dirs) { os.Remove(CaseFile(d.a, 1, "after-vessels")) }, "1 of its 10 case images are missing from DIR_A/cases, the first 000001-after-vessels.png"},
		{"a whole run", func(d dirs) []string { return []string{whole} }, nil, "holds a whole run (summary.json), not shards"},
		{"no shards", func(d dirs) []string { return []string{d.a, t.TempDir()} }, nil, "holds no shard of a run"},
		{"no directory", func(d dirs) []string { return []string{d.a, filepath.Join(d.b, "nope")} }, nil, "nope: no such file"},
	}
	for _, c := range refusals {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			d := dirs{copyDir(t, a), copyDir(t, b)}
			in := []string{d.a, d.b}
			if c.in != nil {
				in = c.in(d)
			}
			if c.spoil != nil {
				c.spoil(d)
			}
			parent := t.TempDir()
			out := filepath.Join(parent, "merged")
			_, err := Merge(out, in)
			t.Log(err)
			want := strings.ReplaceAll(c.want, "DIR_A", d.a)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Merge = %v\nwant an error with %q", err, want)
			}
			if left, _ := os.ReadDir(parent); len(left) > 0 {
				t.Errorf("a refused merge left %v beside its output", left)
			}
		})
	}

	// An existing output is refused and left as it was.
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "keep"), []byte("mine"), 0o644)
	if _, err := Merge(out, []string{a, b}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("merge into an existing directory: %v", err)
	}
	if left, _ := os.ReadDir(out); len(left) != 1 {
		t.Errorf("the existing output now holds %v", left)
	}
}
