package pseudocase

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"latentedit/internal/atomicfile"
)

// shard is one part of a sharded run as Merge finds it in a directory.
type shard struct {
	Shard
	dir   string
	files map[string]bool // which of the shard's three files dir holds
	sum   *Summary
	csv   []byte
	exact []byte
	cases []Case
}

func (s *shard) path(name string) string { return filepath.Join(s.dir, name) }

func (s *shard) String() string { return fmt.Sprintf("shard %d/%d in %s", s.I, s.N, s.dir) }

var shardFile = regexp.MustCompile(`^(?:cases|summary)-(\d+)-of-(\d+)\.(?:csv|jsonl|json)$`)

// parseShardName returns the shard a file of a sharded run belongs to; ok
// is false for any other file.
func parseShardName(name string) (s Shard, ok bool) {
	m := shardFile.FindStringSubmatch(name)
	if m == nil {
		return s, false
	}
	i, err1 := strconv.Atoi(m[1])
	n, err2 := strconv.Atoi(m[2])
	s = Shard{i, n}
	if err1 != nil || err2 != nil || n < 2 || i >= n {
		return s, false
	}
	return s, name == csvName(s) || name == exactName(s) || name == summaryName(s)
}

// refused is Merge's error: every problem found, one a line.
func refused(problems []string) error {
	return fmt.Errorf("pseudocase: merge refused, nothing written:\n  %s", strings.Join(problems, "\n  "))
}

// Merge joins the shards of one run (`pseudocase --shard i/N`, each shard
// in any of dirs; several shards may share a directory) into out, a new
// directory that holds what the run made whole would have written:
// cases.csv, cases.jsonl, summary.json and cases/. Every file but the
// summary's seconds is byte for byte the whole run's; seconds is the sum
// of the shards', the compute the run took.
//
// It checks everything before writing anything: each shard 0..N-1 found
// exactly once, each finished (its summary written last, its CSV and exact
// cases complete and agreeing with each other, its images present), all of
// one run (model, editor, judges, request, --n, --seed, --max-step). A
// refusal lists every problem and leaves no out behind; the output is
// built in a temporary directory beside out and renamed into place.
func Merge(out string, dirs []string) (*Summary, error) {
	if len(dirs) == 0 {
		return nil, fmt.Errorf("pseudocase: merge: no shard directories")
	}
	if _, err := os.Lstat(out); err == nil {
		return nil, fmt.Errorf("pseudocase: merge: %s exists; merge writes a new directory and replaces nothing", out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("pseudocase: merge: %w", err)
	}
	shards, problems := findShards(dirs)
	if len(problems) > 0 {
		return nil, refused(problems)
	}
	var first *shard
	for _, s := range shards {
		if p := s.load(); len(p) > 0 {
			problems = append(problems, p...)
			continue
		}
		if first == nil {
			first = s
			continue
		}
		problems = append(problems, sameRun(first, s)...)
	}
	if len(problems) > 0 {
		return nil, refused(problems)
	}
	head := first.sum.run()
	head.ShardCount = 1
	var cases []Case
	var seconds float64
	for _, s := range shards {
		cases = append(cases, s.cases...)
		seconds += s.sum.Seconds
	}
	sum := summarize(head, cases)
	sum.Seconds = seconds
	if err := writeMerged(out, shards, sum); err != nil {
		return nil, fmt.Errorf("pseudocase: merge: %w", err)
	}
	return sum, nil
}

// findShards lists the shards in dirs and checks that they are the parts
// 0..N-1 of one split, each exactly once.
func findShards(dirs []string) ([]*shard, []string) {
	var problems []string
	given := map[string]bool{}
	found := map[Shard][]*shard{}
	inDirs := map[int][]string{} // shard count → directories holding shards of it
	for _, dir := range dirs {
		if given[filepath.Clean(dir)] {
			problems = append(problems, dir+" is given twice")
			continue
		}
		given[filepath.Clean(dir)] = true
		entries, err := os.ReadDir(dir)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		here := map[Shard]*shard{}
		whole := false
		for _, e := range entries {
			whole = whole || e.Name() == summaryName(Shard{0, 1})
			sh, ok := parseShardName(e.Name())
			if !ok {
				continue
			}
			if here[sh] == nil {
				here[sh] = &shard{Shard: sh, dir: dir, files: map[string]bool{}}
				found[sh] = append(found[sh], here[sh])
				if len(inDirs[sh.N]) == 0 || inDirs[sh.N][len(inDirs[sh.N])-1] != dir {
					inDirs[sh.N] = append(inDirs[sh.N], dir)
				}
			}
			here[sh].files[e.Name()] = true
		}
		switch {
		case len(here) == 0 && whole:
			problems = append(problems, dir+" holds a whole run (summary.json), not shards: there is nothing to merge")
		case len(here) == 0:
			problems = append(problems, dir+" holds no shard of a run (no summary-IIII-of-NNNN.json, cases-IIII-of-NNNN.csv or .jsonl)")
		}
	}
	if len(inDirs) > 1 {
		var splits []string
		for n, ds := range inDirs {
			splits = append(splits, fmt.Sprintf("%d shards in %s", n, strings.Join(ds, ", ")))
		}
		sort.Strings(splits)
		return nil, append(problems, "the shards are of runs split differently: "+strings.Join(splits, "; "))
	}
	if len(problems) > 0 {
		return nil, problems
	}
	var shards []*shard
	for n := range inDirs {
		for i := range n {
			sh := Shard{i, n}
			switch at := found[sh]; len(at) {
			case 0:
				problems = append(problems, fmt.Sprintf("shard %d/%d is missing: no directory holds %s", i, n, summaryName(sh)))
			case 1:
				shards = append(shards, at[0])
			default:
				var ds []string
				for _, s := range at {
					ds = append(ds, s.dir)
				}
				problems = append(problems, fmt.Sprintf("shard %d/%d is in more than one directory: %s", i, n, strings.Join(ds, ", ")))
			}
		}
	}
	return shards, problems
}

// load reads the shard's files and checks that the shard is finished and
// whole: the summary placing it in its run, as many exact cases and CSV
// rows as its part of the run has, the CSV what the exact cases give, and
// every case image.
func (s *shard) load() []string {
	name := summaryName(s.Shard)
	if !s.files[name] {
		return []string{fmt.Sprintf("%s is incomplete: %s is missing (the shard writes it last; is it still running, or was it stopped? run it again)", s, name)}
	}
	raw, err := os.ReadFile(s.path(name))
	if err != nil {
		return []string{err.Error()}
	}
	s.sum = new(Summary)
	if err := json.Unmarshal(raw, s.sum); err != nil {
		return []string{fmt.Sprintf("%s: %v", s.path(name), err)}
	}
	sum := s.sum
	if sum.ShardIndex != s.I || sum.ShardCount != s.N {
		return []string{fmt.Sprintf("%s says it is shard %d/%d, its name says %d/%d (renamed?)", s.path(name), sum.ShardIndex, sum.ShardCount, s.I, s.N)}
	}
	if sum.RunCases < 1 {
		return []string{fmt.Sprintf("%s has no run_cases: a latentedit before merging existed wrote it; run the shard again", s.path(name))}
	}
	lo, hi := s.Range(sum.RunCases)
	if sum.Lo != lo || sum.Cases != hi-lo {
		return []string{fmt.Sprintf("%s holds %d cases from case %d; shard %d/%d of %d cases is cases [%d, %d)", s.path(name), sum.Cases, sum.Lo, s.I, s.N, sum.RunCases, lo, hi)}
	}
	var problems []string
	exactFile, csvFile := s.path(exactName(s.Shard)), s.path(csvName(s.Shard))
	if s.exact, err = os.ReadFile(exactFile); err != nil {
		problems = append(problems, fmt.Sprintf("%s is incomplete: %v", s, err))
	} else if s.cases, err = readExact(exactFile, s.exact); err != nil {
		problems = append(problems, err.Error())
	} else if p := checkCases(exactFile, s.cases, sum, lo, hi); p != "" {
		problems = append(problems, p)
	}
	if s.csv, err = os.ReadFile(csvFile); err != nil {
		problems = append(problems, fmt.Sprintf("%s is incomplete: %v", s, err))
	} else if len(problems) == 0 {
		problems = append(problems, s.checkCSV(csvFile)...)
	}
	var missing []string
	for i := lo; i < hi; i++ {
		for _, kind := range caseKinds {
			if st, err := os.Stat(CaseFile(s.dir, i, kind)); err != nil || !st.Mode().IsRegular() {
				missing = append(missing, filepath.Base(CaseFile(s.dir, i, kind)))
			}
		}
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("%s is incomplete: %d of its %d case images are missing from %s, the first %s",
			s, len(missing), (hi-lo)*len(caseKinds), filepath.Join(s.dir, "cases"), missing[0]))
	}
	return problems
}

// checkCases says what is wrong with a shard's exact cases, or "".
func checkCases(file string, cases []Case, sum *Summary, lo, hi int) string {
	if len(cases) != hi-lo {
		return fmt.Sprintf("%s has %d cases, want %d (cases [%d, %d)): truncated?", file, len(cases), hi-lo, lo, hi)
	}
	for k, c := range cases {
		switch {
		case c.Index != lo+k || c.Seed != sum.Seed+int64(c.Index):
			return fmt.Sprintf("%s line %d is case %d of seed %d, want case %d of seed %d", file, k+1, c.Index, c.Seed, lo+k, sum.Seed+int64(lo+k))
		case len(c.Before) != len(sum.Factors) || len(c.After) != len(sum.Factors):
			return fmt.Sprintf("%s line %d has %d/%d oracle readings, want one per factor (%d)", file, k+1, len(c.Before), len(c.After), len(sum.Factors))
		}
	}
	return ""
}

// checkCSV checks the shard's CSV against its exact cases: written again
// from them, it must come out the same bytes.
func (s *shard) checkCSV(file string) []string {
	var header []string
	if s.I == 0 {
		var err error
		if header, err = csv.NewReader(bytes.NewReader(s.csv)).Read(); err != nil || len(header) == 0 || header[0] != "case" {
			return []string{fmt.Sprintf("%s does not start with the header row (case,seed,…)", file)}
		}
	}
	rows := bytes.Count(s.csv, []byte("\n"))
	if header != nil {
		rows-- // a header with no newline counts -1 rows: the mismatch below names it
	}
	if rows != len(s.cases) {
		return []string{fmt.Sprintf("%s has %d case rows, want %d: truncated?", file, rows, len(s.cases))}
	}
	var want bytes.Buffer
	if err := writeRows(&want, header, s.sum, s.cases); err != nil {
		return []string{fmt.Sprintf("%s: %v", file, err)}
	}
	if !bytes.Equal(want.Bytes(), s.csv) {
		return []string{fmt.Sprintf("%s is not the CSV of %s: edited, or from another run", file, exactName(s.Shard))}
	}
	return nil
}

// run is the part of a summary all shards of one run share: the model,
// editor, judges, request and --n, --seed, --max-step.
func (s *Summary) run() *Summary {
	r := &Summary{Editor: s.Editor, Method: s.Method, Request: s.Request, RunCases: s.RunCases, Model: s.Model,
		Seed: s.Seed, MaxStep: s.MaxStep, Factors: s.Factors, Target: s.Target, OracleR2: s.OracleR2, SegmenterDice: s.SegmenterDice}
	if s.Region != nil {
		r.Region = &RegionSummary{Options: s.Region.Options, Discriminator: s.Region.Discriminator, SeamReal: s.Region.SeamReal, Reference: s.Region.Reference, RealVsReal: s.Region.RealVsReal}
	}
	return r
}

// sameRun names each field in which b's run differs from a's.
func sameRun(a, b *shard) []string {
	ra, rb := fields(a.sum.run()), fields(b.sum.run())
	var problems []string
	for _, k := range sortedKeys(ra) {
		if !reflect.DeepEqual(ra[k], rb[k]) {
			problems = append(problems, fmt.Sprintf("%s is of another run: %s is %s in %s but %s in %s",
				b, k, rb[k], b.path(summaryName(b.Shard)), ra[k], a.path(summaryName(a.Shard))))
		}
	}
	return problems
}

// fields maps a summary's JSON field names to their JSON values.
func fields(s *Summary) map[string]json.RawMessage {
	raw, _ := json.Marshal(s) // a run() summary has no NaN: its means are zero
	var m map[string]json.RawMessage
	json.Unmarshal(raw, &m)
	return m
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeMerged writes the merged run into a temporary directory beside out
// and renames it to out once complete.
func writeMerged(out string, shards []*shard, sum *Summary) (err error) {
	parent := filepath.Dir(filepath.Clean(out))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".merge-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Mkdir(filepath.Join(tmp, "cases"), 0o755); err != nil {
		return err
	}
	var csvAll, exactAll []byte
	for _, s := range shards {
		csvAll = append(csvAll, s.csv...)
		exactAll = append(exactAll, s.exact...)
		lo, hi := s.Range(sum.RunCases)
		for i := lo; i < hi; i++ {
			for _, kind := range caseKinds {
				if err := linkOrCopy(CaseFile(s.dir, i, kind), CaseFile(tmp, i, kind)); err != nil {
					return err
				}
			}
		}
	}
	if err := atomicfile.WriteFile(filepath.Join(tmp, csvName(Shard{0, 1})), csvAll, atomicfile.DefaultPerm); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(tmp, exactName(Shard{0, 1})), exactAll, atomicfile.DefaultPerm); err != nil {
		return err
	}
	if err := writeSummary(filepath.Join(tmp, summaryName(Shard{0, 1})), sum); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp made it private
		return err
	}
	return os.Rename(tmp, out)
}

// linkOrCopy hard-links src to dst, or copies it where links are not
// possible (another file system). Sharing the inode is safe: a run writes
// every file by renaming a new one over it, never in place, so running a
// shard again cannot change the merged images.
func linkOrCopy(src, dst string) error {
	if os.Link(src, dst) == nil {
		return nil
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return atomicfile.Write(dst, func(w io.Writer) error {
		_, err := io.Copy(w, f)
		return err
	})
}
