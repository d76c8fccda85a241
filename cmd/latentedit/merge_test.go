package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// envArgs holds the command line (a JSON list) that a child process of this
// test binary runs instead of the tests: the child is the real latentedit.
const envArgs = "LATENTEDIT_TEST_ARGS"

func TestMain(m *testing.M) {
	if raw := os.Getenv(envArgs); raw != "" {
		var args []string
		if err := json.Unmarshal([]byte(raw), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(exitUsage)
		}
		os.Exit(run(args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestPseudocaseShardProcessesMerge scales a run out as a cluster would:
// three shards of 5 cases run at once as separate processes (shards 0 and 1
// share a directory, 2 has its own), --merge joins them, and the merged
// directory holds the files of the same run made whole in one process, byte
// for byte, but for the summary's wall time. The report reads it.
func TestPseudocaseShardProcessesMerge(t *testing.T) {
	t.Chdir(t.TempDir())
	args := []string{"pseudocase", "--model", "fundus-gan", "--add", "cup:0.7", "--n", "5", "--seed", "3"}
	var children []*exec.Cmd
	var stderrs []*bytes.Buffer
	for i, dir := range []string{"a", "a", "b"} {
		raw, _ := json.Marshal(slices.Concat(args, []string{"--shard", fmt.Sprintf("%d/3", i), "--out", dir}))
		c := exec.Command(os.Args[0], "-test.run=^$")
		c.Env = append(os.Environ(), envArgs+"="+string(raw))
		stderrs = append(stderrs, new(bytes.Buffer))
		c.Stderr = stderrs[i]
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		children = append(children, c)
	}
	for i, c := range children {
		if err := c.Wait(); err != nil {
			t.Fatalf("shard %d/3: %v\n%s", i, err, stderrs[i])
		}
	}
	var out, errb bytes.Buffer
	if code := run(slices.Concat(args, []string{"--out", "whole"}), &out, &errb); code != 0 {
		t.Fatalf("whole run: exit %d: %s", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"pseudocase", "--merge", "a,b", "--out", "merged", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("merge: exit %d: %s", code, errb.String())
	}
	var sum struct {
		Cases   int     `json:"cases"`
		Seconds float64 `json:"seconds"`
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil || sum.Cases != 5 {
		t.Errorf("merge printed %q (%v), want the summary of 5 cases", out.String(), err)
	}
	sameTree(t, "whole", "merged")
	if code := run([]string{"pseudocase", "--report-runs", "merged", "--out", "page"}, &out, &errb); code != 0 {
		t.Errorf("report of the merged run: exit %d: %s", code, errb.String())
	}

	// Refusals exit 1, name the problem and write nothing.
	for _, c := range []struct {
		dirs, out, want string
	}{
		{"a", "m1", "shard 2/3 is missing"},
		{"a,b", "merged", "merged exists"},
		{"a,b,whole", "m2", "whole holds a whole run"},
	} {
		errb.Reset()
		code := run([]string{"pseudocase", "--merge", c.dirs, "--out", c.out}, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("--merge %s: exit %d, %q; want 1 and %q", c.dirs, code, errb.String(), c.want)
		}
		if _, err := os.Stat(c.out); c.out != "merged" && err == nil {
			t.Errorf("--merge %s left %s", c.dirs, c.out)
		}
	}
}

// sameTree fails t unless dir b holds exactly the files of dir a with the
// same bytes, summary.json compared with its seconds zeroed.
func sameTree(t *testing.T, a, b string) {
	t.Helper()
	seconds := regexp.MustCompile(`"seconds": [^,\n]+`)
	files := func(root string) map[string][]byte {
		m := map[string][]byte{}
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(root, p)
				m[rel], _ = os.ReadFile(p)
			}
			return err
		})
		m["summary.json"] = seconds.ReplaceAll(m["summary.json"], []byte(`"seconds": 0`))
		return m
	}
	fa, fb := files(a), files(b)
	if len(fa) < 5*5+3 || len(fa) != len(fb) {
		t.Errorf("%s holds %d files, %s %d", a, len(fa), b, len(fb))
	}
	for name, x := range fa {
		if y, ok := fb[name]; !ok || !bytes.Equal(x, y) {
			t.Errorf("%s differs between %s and %s", name, a, b)
		}
	}
}
