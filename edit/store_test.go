package edit

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
)

var (
	edTestOnce sync.Once
	edTestBE   backends.Backend
	edTestErr  error
)

// edTestBackend is the CPU backend shared by this package's tests.
func edTestBackend(t testing.TB) backends.Backend {
	t.Helper()
	edTestOnce.Do(func() { edTestBE, edTestErr = engine.NewBackend("") })
	if edTestErr != nil {
		t.Fatal(edTestErr)
	}
	return edTestBE
}

// newTestEditor makes a fresh editor of a method with a fixed seed; flows
// get random (non-identity) weights.
func newTestEditor(t testing.TB, method string, k, d int, opt Options) Editor {
	t.Helper()
	if method == "curvilinear" {
		return newTestCurvilinear(t, k, d, opt, 21, 1)
	}
	ctx := context.New()
	if err := ctx.SetRNGStateFromSeed(21); err != nil {
		t.Fatal(err)
	}
	e, err := New(method, k, d, opt, ctx, edTestBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type storeCase struct {
	name, method string
	opt          Options
}

var storeCases = []storeCase{
	{"linear", "linear", nil},
	{"linear-orthonormal", "linear", Options{"orthonormal": true}},
	{"warped", "warped", Options{"dipoles": 4}},
	{"curvilinear-coupling", "curvilinear", Options{"hidden": 16, "layers": 2}},
	{"curvilinear-ode", "curvilinear", Options{"flow": "ode", "hidden": 16, "ode_steps": 4}},
	{"potential", "potential", Options{"hidden": 16}},
}

func TestSaveLoadRoundTrip(t *testing.T) {
	const k, d = 4, 16
	be := edTestBackend(t)
	for _, tc := range storeCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEditor(t, tc.method, k, d, tc.opt)
			names := []string{"smile", "age", "pose", "light"}
			if err := e.(named).SetNames(names); err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(1, 2))
			type probe struct {
				z   []float32
				k   int
				t   float32
				out []float32
			}
			var probes []probe
			for i := range 4 {
				p := probe{z: randLatent(r, d), k: i % k, t: float32(4*r.Float64() - 2)}
				out, err := One(e, p.z, p.k, p.t)
				if err != nil {
					t.Fatal(err)
				}
				p.out = out
				probes = append(probes, p)
			}
			dir := filepath.Join(t.TempDir(), tc.name)
			if err := Save(dir, e, map[string]any{"steps": 3}); err != nil {
				t.Fatal(err)
			}
			got, err := Load(dir, SpaceZ, d, be)
			if err != nil {
				t.Fatal(err)
			}
			if got.Method() != tc.method || got.K() != k || got.LatentDim() != d {
				t.Errorf("loaded %s K=%d d=%d, saved %s K=%d d=%d", got.Method(), got.K(), got.LatentDim(), tc.method, k, d)
			}
			if strings.Join(got.Names(), ",") != strings.Join(names, ",") {
				t.Errorf("loaded names %q, saved %q", got.Names(), names)
			}
			for i, p := range probes {
				out, err := One(got, p.z, p.k, p.t)
				if err != nil {
					t.Fatal(err)
				}
				if dd := dist32(out, p.out); !(dd <= 1e-6*norm32(p.z)) {
					t.Errorf("probe %d: edit after reload differs by %.3g", i, dd)
				}
			}
		})
	}
}

// rewriteSpec edits dir/editor.json as a generic JSON object.
func rewriteSpec(t *testing.T, dir string, edit func(m map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, SpecFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	raw, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrors(t *testing.T) {
	const k, d = 3, 8
	be := edTestBackend(t)
	save := func(t *testing.T, method string, opt Options) string {
		e := newTestEditor(t, method, k, d, opt)
		if _, err := One(e, make([]float32, d), 0, 1); err != nil { // initialises the variables
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), method)
		if err := Save(dir, e, nil); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	expectErr := func(t *testing.T, err error, mention ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("Load succeeded, want an error mentioning %q", mention)
		}
		for _, s := range mention {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %q", err, s)
			}
		}
		t.Logf("%v", err)
	}

	t.Run("latent dim", func(t *testing.T) {
		dir := save(t, "linear", nil)
		_, err := Load(dir, SpaceZ, d+1, be)
		expectErr(t, err, filepath.Join(dir, SpecFile), "latent_dim")
	})
	t.Run("unknown method", func(t *testing.T) {
		dir := save(t, "linear", nil)
		rewriteSpec(t, dir, func(m map[string]any) { m["method"] = "spline-warp" })
		_, err := Load(dir, SpaceZ, d, be)
		expectErr(t, err, filepath.Join(dir, SpecFile), "spline-warp")
	})
	t.Run("missing spec", func(t *testing.T) {
		dir := save(t, "linear", nil)
		os.Remove(filepath.Join(dir, SpecFile))
		_, err := Load(dir, SpaceZ, d, be)
		expectErr(t, err, dir)
	})
	t.Run("truncated weights", func(t *testing.T) {
		for _, method := range []string{"linear", "warped", "curvilinear"} {
			dir := save(t, method, nil)
			wpath := filepath.Join(dir, WeightsFile)
			raw, err := os.ReadFile(wpath)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(wpath, raw[:len(raw)/2], 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = Load(dir, SpaceZ, d, be)
			expectErr(t, err, wpath, "sha256")
		}
	})
	t.Run("missing weights", func(t *testing.T) {
		dir := save(t, "warped", nil)
		os.Remove(filepath.Join(dir, WeightsFile))
		_, err := Load(dir, SpaceZ, d, be)
		expectErr(t, err, WeightsFile)
	})
	// editor.json says K−1 directions; the weights hold K: the weights' shapes
	// must not fit.
	t.Run("k mismatch", func(t *testing.T) {
		for _, method := range []string{"linear", "warped"} {
			dir := save(t, method, nil)
			rewriteSpec(t, dir, func(m map[string]any) {
				m["k"] = k - 1
				m["names"] = DefaultNames(k - 1)
			})
			_, err := Load(dir, SpaceZ, d, be)
			expectErr(t, err, dir, "shape")
		}
	})
	t.Run("bad option", func(t *testing.T) {
		dir := save(t, "warped", nil)
		rewriteSpec(t, dir, func(m map[string]any) {
			m["params"] = map[string]any{"dipoles": 0}
		})
		_, err := Load(dir, SpaceZ, d, be)
		expectErr(t, err, dir, "dipoles")
	})
}

func FuzzParseSpec(f *testing.F) {
	valid, _ := json.Marshal(Spec{FormatVersion: FormatVersion, Method: "warped", K: 2, LatentDim: 64,
		Names: []string{"smile", "age"}, Params: map[string]any{"dipoles": 8}, WeightsSHA256: strings.Repeat("ab", 32)})
	f.Add(valid)
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"format_version":1,"method":"linear","k":1e309}`))
	f.Add([]byte(`{"format_version":1,"method":"curvilinear","k":-1,"latent_dim":4,"names":[]}`))
	f.Add([]byte(`[1,2,3]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := ParseSpec(raw)
		if err != nil {
			return
		}
		if s.FormatVersion != FormatVersion || methods[s.Method] == nil || s.K < 1 || s.K > 512 ||
			s.LatentDim < 1 || s.LatentDim > 4096 || len(s.Names) != s.K || len(s.WeightsSHA256) != 64 {
			t.Fatalf("ParseSpec accepted an invalid spec: %+v", s)
		}
	})
}

func TestParseSpecValid(t *testing.T) {
	raw := []byte(`{"format_version":1,"method":"curvilinear","k":2,"latent_dim":64,"names":["a","b"],
		"params":{"flow":"ode"},"weights_sha256":"` + strings.Repeat("0", 64) + `"}`)
	s, err := ParseSpec(raw)
	if err != nil {
		t.Fatal(err)
	}
	if s.Method != "curvilinear" || s.K != 2 || s.Params["flow"] != "ode" {
		t.Errorf("parsed %+v", s)
	}
	for _, bad := range []string{
		strings.Replace(string(raw), `"k":2`, `"k":3`, 1),
		strings.Replace(string(raw), `"format_version":1`, `"format_version":2`, 1),
		strings.Replace(string(raw), `"latent_dim":64`, `"latent_dim":0`, 1),
		strings.Replace(string(raw), `"curvilinear"`, `"curvy"`, 1),
		strings.Replace(string(raw), strings.Repeat("0", 64), "00", 1),
	} {
		if _, err := ParseSpec([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestApplyRejects(t *testing.T) {
	const k, d = 3, 8
	for _, method := range []string{"linear", "warped", "curvilinear"} {
		e := newTestEditor(t, method, k, d, nil)
		z := make([]float32, d)
		nanZ := make([]float32, d)
		nanZ[3] = float32(math.NaN())
		for _, tc := range []struct {
			name  string
			z     []float32
			steps []Step
		}{
			{"k = K", z, []Step{{0, 1}, {k, 1}}},
			{"k < 0", z, []Step{{-1, 1}}},
			{"NaN t", z, []Step{{1, float32(math.NaN())}}},
			{"infinite t", z, []Step{{1, float32(math.Inf(1))}}},
			{"huge t", z, []Step{{1, 1e6}}},
			{"short latent", z[:d-1], []Step{{0, 1}}},
			{"long latent", append(z, 0), []Step{{0, 1}}},
			{"NaN latent", nanZ, []Step{{0, 1}}},
		} {
			if out, err := ApplyOne(e, tc.z, tc.steps); err == nil {
				t.Errorf("%s: ApplyOne accepted %s (returned %d latents)", method, tc.name, len(out))
			}
			if len(tc.steps) == 1 {
				if _, err := One(e, tc.z, tc.steps[0].K, tc.steps[0].T); err == nil {
					t.Errorf("%s: One accepted %s", method, tc.name)
				}
			}
		}
		out, err := ApplyOne(e, randLatent(rand.New(rand.NewPCG(1, 1)), d), []Step{{0, 1}, {2, -1}, {1, 0.5}})
		if err != nil || len(out) != 3 {
			t.Errorf("%s: ApplyOne of 3 valid steps: %d latents, %v", method, len(out), err)
		}
	}
}

func TestDirection(t *testing.T) {
	e := newTestEditor(t, "linear", 3, 4, nil)
	if k, err := Direction(e, "2"); err != nil || k != 2 {
		t.Errorf(`Direction("2") = %d, %v before naming`, k, err)
	}
	if err := e.(named).SetNames([]string{"smile", "0", "age"}); err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]int{"smile": 0, "age": 2, "0": 1, "2": 2} {
		if k, err := Direction(e, s); err != nil || k != want {
			t.Errorf("Direction(%q) = %d, %v; want %d", s, k, err, want)
		}
	}
	for _, s := range []string{"3", "-1", "frown", "", "02", " 1", "1.0"} {
		if k, err := Direction(e, s); err == nil {
			t.Errorf("Direction(%q) = %d, want an error", s, k)
		}
	}
	for _, bad := range [][]string{{"a", "b"}, {"a", "a", "b"}, {"a", "", "b"}} {
		if err := e.(named).SetNames(bad); err == nil {
			t.Errorf("SetNames(%q) accepted", bad)
		}
	}
}

// TestUniqueNames: one rule, every result unique and non-empty, first
// occurrences kept — including the case the study's old rule got wrong
// (["a", "a", "a 2"] gave "a 2" twice).
func TestUniqueNames(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"a", "a", "a 2"}, []string{"a", "a 3", "a 2"}},
		{[]string{"smile", "smile", "yaw"}, []string{"smile", "smile 2", "yaw"}},
		{[]string{"", "", "dir 1"}, []string{"dir 0", "dir 1 2", "dir 1"}},
		{[]string{"x", "x", "x", "x 2"}, []string{"x", "x 3", "x 4", "x 2"}},
		{[]string{"b", "c"}, []string{"b", "c"}},
	} {
		got := UniqueNames(tc.in)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("UniqueNames(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 { // random lists of repeated short names: always unique, first occurrences kept
		in := make([]string, 1+r.IntN(8))
		for i := range in {
			in[i] = []string{"", "a", "a 2", "a 3", "b", "dir 0", "dir 1"}[r.IntN(7)]
		}
		got := UniqueNames(in)
		seen := map[string]bool{}
		for i, n := range got {
			if n == "" || seen[n] {
				t.Fatalf("UniqueNames(%q) = %q: %q repeated or empty", in, got, n)
			}
			seen[n] = true
			if in[i] != "" && slices.Index(in, in[i]) == i && n != in[i] {
				t.Fatalf("UniqueNames(%q) = %q: first occurrence %d renamed", in, got, i)
			}
		}
	}
}

// TestRenameNumbersRepeats: names go through UniqueNames into editor.json,
// and the editor loads with them; a wrong count or a corrupt spec is refused.
func TestRenameNumbersRepeats(t *testing.T) {
	be := edTestBackend(t)
	e, err := NewFixed("sefa", [][]float32{{1, 0}, {0, 1}, {1, 1}}, nil, be)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Save(dir, e, nil); err != nil {
		t.Fatal(err)
	}
	if err := Rename(dir, []string{"a", "a", "a 2"}); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir, SpaceZ, 2, be)
	if err != nil {
		t.Fatal(err)
	}
	if n := back.Names(); strings.Join(n, "|") != "a|a 3|a 2" {
		t.Fatalf("names %q", n)
	}
	if err := Rename(dir, []string{"a"}); err == nil || !strings.Contains(err.Error(), "1 names for k = 3") {
		t.Fatalf("wrong count: %v", err)
	}
	os.WriteFile(filepath.Join(dir, SpecFile), []byte("{"), 0o644)
	if err := Rename(dir, []string{"a", "b", "c"}); err == nil || !strings.Contains(err.Error(), SpecFile) {
		t.Fatalf("corrupt editor.json: %v", err)
	}
}
