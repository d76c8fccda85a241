package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"latentedit/pseudocase"
)

// The manifests in deploy/ run `latentedit pseudocase` on a cluster. These
// tests keep them true to the binary: the YAML is well formed, every
// command line parses with this binary's flags, the shard index comes from
// the scheduler's variable, the N of --shard i/N is the number of tasks,
// and the merge reads the directory the shards write.

const deployDir = "../../deploy"

func TestKubernetesIndexedJob(t *testing.T) {
	pvc := readYAML(t, "k8s/pseudocase-pvc.yaml")
	job := readYAML(t, "k8s/pseudocase-job.yaml")
	merge := readYAML(t, "k8s/pseudocase-merge-job.yaml")
	want := map[string]map[string]string{
		"pvc":   {"kind": "PersistentVolumeClaim", "spec.accessModes.0": "ReadWriteMany"},
		"job":   {"kind": "Job", "spec.completionMode": "Indexed", "spec.template.spec.restartPolicy": "Never"},
		"merge": {"kind": "Job", "spec.template.spec.restartPolicy": "Never"},
	}
	for name, doc := range map[string]map[string]string{"pvc": pvc, "job": job, "merge": merge} {
		for k, v := range want[name] {
			if doc[k] != v {
				t.Errorf("%s: %s is %q, want %q", name, k, doc[k], v)
			}
		}
	}
	for _, doc := range []map[string]string{job, merge} {
		if claim := doc["spec.template.spec.volumes.0.persistentVolumeClaim.claimName"]; claim != pvc["metadata.name"] {
			t.Errorf("a job mounts claim %q, the volume is %q", claim, pvc["metadata.name"])
		}
	}
	completions, err := strconv.Atoi(job["spec.completions"])
	if err != nil {
		t.Fatalf("spec.completions %q: %v", job["spec.completions"], err)
	}
	if p, _ := strconv.Atoi(job["spec.parallelism"]); p < 1 || p > completions {
		t.Errorf("parallelism %q, want 1..%d", job["spec.parallelism"], completions)
	}
	c := "spec.template.spec.containers.0."
	if job[c+"command.0"] != "sh" || job[c+"command.1"] != "-c" {
		t.Fatalf("the shard container runs %q %q, want sh -c (the shell reads $JOB_COMPLETION_INDEX)", job[c+"command.0"], job[c+"command.1"])
	}
	shards := checkShardCommand(t, job[c+"command.2"], `\$\{?JOB_COMPLETION_INDEX\}?`, completions)
	mergeArgs := sequence(merge, c+"command")
	if len(mergeArgs) < 2 || mergeArgs[0] != "latentedit" {
		t.Fatalf("the merge container runs %q", mergeArgs)
	}
	checkMerge(t, mergeArgs[1:], shards)
	mount := job[c+"volumeMounts.0.mountPath"]
	if !strings.HasPrefix(shards, mount+"/") || merge[c+"volumeMounts.0.mountPath"] != mount {
		t.Errorf("the shards write %s, outside the shared volume at %s (merge mounts it at %s)", shards, mount, merge[c+"volumeMounts.0.mountPath"])
	}
}

func TestSlurmJobArray(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(deployDir, "slurm/pseudocase.sbatch"))
	if err != nil {
		t.Fatal(err)
	}
	array := regexp.MustCompile(`(?m)^#SBATCH --array=0-(\d+)$`).FindSubmatch(raw)
	if array == nil {
		t.Fatal("pseudocase.sbatch has no #SBATCH --array=0-(N-1)")
	}
	last, _ := strconv.Atoi(string(array[1]))
	shards := checkShardCommand(t, string(raw), `"?\$\{?SLURM_ARRAY_TASK_ID\}?`, last+1)
	mergeScript, err := os.ReadFile(filepath.Join(deployDir, "slurm/pseudocase-merge.sbatch"))
	if err != nil {
		t.Fatal(err)
	}
	checkMerge(t, latenteditArgs(t, string(mergeScript)), shards)
	submit, err := os.ReadFile(filepath.Join(deployDir, "slurm/submit.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sbatch --parsable \"$here/pseudocase.sbatch\"", "--dependency=afterok:\"$array\" \"$here/pseudocase-merge.sbatch\""} {
		if !strings.Contains(string(submit), want) {
			t.Errorf("submit.sh lacks %s", want)
		}
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		for _, f := range []string{"pseudocase.sbatch", "pseudocase-merge.sbatch", "submit.sh"} {
			if out, err := exec.Command(bash, "-n", filepath.Join(deployDir, "slurm", f)).CombinedOutput(); err != nil {
				t.Errorf("%s: %v\n%s", f, err, out)
			}
		}
	}
}

// checkShardCommand finds the latentedit command line in script, checks
// that its --shard is INDEX/n with INDEX the scheduler's variable (matched
// by indexVar) and that it parses for every index, and returns its --out.
func checkShardCommand(t *testing.T, script, indexVar string, n int) string {
	t.Helper()
	args := latenteditArgs(t, script)
	shardFlag := regexp.MustCompile(`^` + indexVar + `/(\d+)"?$`)
	var out string
	for i, a := range args {
		if i+1 < len(args) && a == "--out" {
			out = args[i+1]
		}
	}
	for i, a := range args {
		if i+1 < len(args) && a == "--shard" {
			m := shardFlag.FindStringSubmatch(args[i+1])
			if m == nil {
				t.Fatalf("--shard %s does not take its index from the scheduler", args[i+1])
			}
			if got, _ := strconv.Atoi(m[1]); got != n {
				t.Fatalf("--shard INDEX/%d, but the scheduler runs %d tasks", got, n)
			}
			for _, idx := range []int{0, n - 1} {
				with := append([]string(nil), args...)
				with[i+1] = fmt.Sprintf("%d/%d", idx, n)
				a, err := parsePseudocase(with[1:], io.Discard)
				if err != nil {
					t.Fatalf("task %d's command line %q: %v", idx, with, err)
				}
				if a.shard != (pseudocase.Shard{I: idx, N: n}) || a.merge != nil || a.reportRuns != nil {
					t.Errorf("task %d's command line makes %+v", idx, a)
				}
			}
			return out
		}
	}
	t.Fatalf("no --shard in %q", args)
	return ""
}

// checkMerge checks that args (after `latentedit`) merge exactly the
// directory shards into a run directory of its own.
func checkMerge(t *testing.T, args []string, shards string) {
	t.Helper()
	a, err := parsePseudocase(args[1:], io.Discard)
	if err != nil || args[0] != "pseudocase" {
		t.Fatalf("merge command line %q: %v", args, err)
	}
	if len(a.merge) != 1 || a.merge[0] != shards || a.out == shards {
		t.Errorf("the merge reads %q into %q; the shards write %q", a.merge, a.out, shards)
	}
}

// latenteditArgs returns the words of the `latentedit …` command in a shell
// script, continuation lines joined and quotes left on.
func latenteditArgs(t *testing.T, script string) []string {
	t.Helper()
	script = strings.ReplaceAll(script, "\\\n", " ")
	for _, line := range strings.Split(script, "\n") {
		words := strings.Fields(line)
		for i, w := range words {
			if w == "latentedit" && !strings.HasPrefix(words[0], "#") {
				return words[i+1:]
			}
		}
	}
	t.Fatalf("no latentedit command in %q", script)
	return nil
}

func readYAML(t *testing.T, name string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := flatYAML(string(raw))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return doc
}

// sequence returns the scalars of the YAML sequence at path.
func sequence(doc map[string]string, path string) []string {
	var out []string
	for i := 0; ; i++ {
		v, ok := doc[path+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v)
	}
}

// yamlLine is one line of a YAML document: its indentation and text.
type yamlLine struct {
	n, indent int
	text      string
	skip      bool // blank or a comment
}

var yamlKey = regexp.MustCompile(`^([A-Za-z0-9_./-]+):(?:\s+(.*))?$`)

// flatYAML reads the block-style YAML the manifests are written in — one
// document of mappings, sequences, plain or quoted scalars and block
// scalars (| and >) — into path → scalar (e.g.
// "spec.template.spec.containers.0.image"). The module has no YAML parser;
// this is a structural check in its place: it fails on tabs, on
// indentation that belongs to no parent, on a duplicate key, and on any
// line that is none of the above.
func flatYAML(src string) (map[string]string, error) {
	var lines []yamlLine
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, "\t") {
			return nil, fmt.Errorf("line %d: a tab", i+1)
		}
		text := strings.TrimLeft(l, " ")
		lines = append(lines, yamlLine{i + 1, len(l) - len(text), strings.TrimRight(text, " "), text == "" || strings.HasPrefix(text, "#")})
	}
	p := &yamlParser{lines: lines, out: map[string]string{}}
	p.next()
	if p.i < len(p.lines) {
		if err := p.node(p.lines[p.i].indent, ""); err != nil {
			return nil, err
		}
	}
	if p.next(); p.i < len(p.lines) {
		return nil, fmt.Errorf("line %d: indentation that belongs to no parent", p.lines[p.i].n)
	}
	return p.out, nil
}

type yamlParser struct {
	lines []yamlLine
	i     int
	out   map[string]string
}

// next skips blank and comment lines.
func (p *yamlParser) next() {
	for p.i < len(p.lines) && p.lines[p.i].skip {
		p.i++
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// node reads the mapping or sequence whose lines start at indent.
func (p *yamlParser) node(indent int, path string) error {
	seq := strings.HasPrefix(p.lines[p.i].text+" ", "- ")
	for k := 0; ; k++ {
		p.next()
		if p.i >= len(p.lines) || p.lines[p.i].indent < indent {
			return nil
		}
		l := &p.lines[p.i]
		if l.indent > indent || strings.HasPrefix(l.text+" ", "- ") != seq {
			return fmt.Errorf("line %d: indentation or item that belongs to no parent", l.n)
		}
		if seq {
			item := join(path, strconv.Itoa(k))
			rest := strings.TrimLeft(strings.TrimPrefix(l.text, "-"), " ")
			if yamlKey.MatchString(rest) {
				// "- key: value" opens a mapping indented past the dash.
				l.indent, l.text = l.indent+len(l.text)-len(rest), rest
				if err := p.node(l.indent, item); err != nil {
					return err
				}
				continue
			}
			p.i++
			if err := p.value(indent, item, rest); err != nil {
				return err
			}
			continue
		}
		m := yamlKey.FindStringSubmatch(l.text)
		if m == nil {
			return fmt.Errorf("line %d: %q is neither key: value nor - item", l.n, l.text)
		}
		key := join(path, m[1])
		if _, dup := p.out[key]; dup || p.hasChild(key) {
			return fmt.Errorf("line %d: %s given twice", l.n, m[1])
		}
		p.i++
		if err := p.value(indent, key, m[2]); err != nil {
			return err
		}
	}
}

// value reads what follows the key or dash at indent on its line, v: a
// scalar, a block scalar on the lines below, or nothing and a node below.
func (p *yamlParser) value(indent int, path, v string) error {
	switch v = stripComment(v); v {
	case "":
		return p.child(indent, path)
	case "|", "|-", ">", ">-":
		var block []string
		for ; p.i < len(p.lines) && (p.lines[p.i].indent > indent || p.lines[p.i].text == ""); p.i++ {
			block = append(block, p.lines[p.i].text)
		}
		sep := "\n"
		if v[0] == '>' {
			sep = " "
		}
		p.out[path] = strings.TrimSpace(strings.Join(block, sep))
	default:
		p.out[path] = scalar(v)
	}
	return nil
}

// child reads the node under a key or dash at indent: it must be indented
// deeper.
func (p *yamlParser) child(indent int, path string) error {
	p.next()
	if p.i >= len(p.lines) || p.lines[p.i].indent <= indent {
		return fmt.Errorf("%s: no value", path)
	}
	return p.node(p.lines[p.i].indent, path)
}

func (p *yamlParser) hasChild(key string) bool {
	for k := range p.out {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

func stripComment(v string) string {
	if i := strings.Index(v, " #"); i >= 0 && !strings.HasPrefix(v, `"`) && !strings.HasPrefix(v, "'") {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

func scalar(v string) string {
	v = stripComment(v)
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		return v[1 : len(v)-1]
	}
	return v
}

func TestFlatYAML(t *testing.T) {
	doc, err := flatYAML(`# a comment
kind: Job
spec:
  completions: 4 # four
  list:
    - a
    - "b c"
    - name: x
      image: y
    - >-
      one
      two
  script: |
    line 1
    line 2
`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"kind": "Job", "spec.completions": "4", "spec.list.0": "a", "spec.list.1": "b c",
		"spec.list.2.name": "x", "spec.list.2.image": "y", "spec.list.3": "one two", "spec.script": "line 1\nline 2"}
	if fmt.Sprint(doc) != fmt.Sprint(want) {
		t.Errorf("read\n%v\nwant\n%v", doc, want)
	}
	for _, bad := range []string{
		"kind: Job\n\tspec: 1\n",
		"kind: Job\n  spec: 1\n",
		"kind: Job\nkind: Pod\n",
		"spec:\n  a: 1\nspec:\n  b: 2\n",
		"spec:\n  a: 1\n    b: 2\n",
		"spec:\n  - a\n  b: 1\n",
		"spec:\nkind: Job\n",
		"just words\n",
	} {
		if doc, err := flatYAML(bad); err == nil {
			t.Errorf("%q read as %v", bad, doc)
		}
	}
}
