package layers

import (
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "latentedit/"

// pkg is one package as `go list` reports it.
type pkg struct {
	ImportPath string
	Imports    []string
}

// violations lists every import of a package of the same layer or above in
// order, and every package order does not list.
func violations(order [][]string, pkgs []pkg) []string {
	layer := map[string]int{}
	var bad []string
	for i, l := range order {
		for _, p := range l {
			if _, dup := layer[p]; dup {
				bad = append(bad, p+" listed twice")
			}
			layer[p] = i
		}
	}
	for _, p := range pkgs {
		name := strings.TrimPrefix(p.ImportPath, module)
		from, ok := layer[name]
		if !ok {
			bad = append(bad, fmt.Sprintf("package %s is not in layers.Order: add it to the layer its imports call for", name))
			continue
		}
		for _, imp := range p.Imports {
			dep, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			if to, ok := layer[dep]; ok && to >= from {
				bad = append(bad, fmt.Sprintf("%s (layer %d) imports %s (layer %d): imports must point down", name, from, dep, to))
			}
		}
	}
	return bad
}

// TestDependenciesPointDown reads every package's imports from `go list`
// and fails on an import of a package of the same layer or one above, and on
// a package Order does not list.
func TestDependenciesPointDown(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.ImportPath != module+"internal/layers" {
			pkgs = append(pkgs, p)
		}
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, v := range violations(Order, pkgs) {
		t.Error(v)
	}
	listed := 0
	for _, l := range Order {
		listed += len(l)
	}
	if listed != len(pkgs) {
		t.Errorf("go list found %d packages, Order lists %d: remove the ones that are gone", len(pkgs), listed)
	}
}

// TestViolationsFindsUpwardImports: the check reports an upward import, an
// import within a layer and an unlisted package, so a clean run means
// something.
func TestViolationsFindsUpwardImports(t *testing.T) {
	order := [][]string{{"engine"}, {"edit", "generator"}, {"evaluate"}}
	got := violations(order, []pkg{
		{module + "engine", []string{"fmt"}},
		{module + "edit", []string{module + "evaluate", module + "engine"}}, // up
		{module + "generator", []string{module + "edit"}},                   // same layer
		{module + "evaluate", []string{module + "edit"}},                    // fine
		{module + "newthing", nil},                                          // unlisted
	})
	want := []string{"edit (layer 1) imports evaluate", "generator (layer 1) imports edit", "newthing is not in"}
	if len(got) != len(want) {
		t.Fatalf("violations %q, want %d", got, len(want))
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("violation %d = %q, want it to contain %q", i, got[i], w)
		}
	}
}
