package pseudocase

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"latentedit/edit"
)

// Every float64, the non-finite ones included, reads back with its bits
// (NaN as a NaN: its payload is never looked at).
func FuzzExact(f *testing.F) {
	for _, v := range []float64{0, math.Copysign(0, -1), 0.1, 1.0 / 3, math.MaxFloat64, math.SmallestNonzeroFloat64, 1e21, -1e-7,
		float64(float32(0.1)), math.NaN(), math.Inf(1), math.Inf(-1)} {
		f.Add(math.Float64bits(v))
	}
	f.Fuzz(func(t *testing.T, bits uint64) {
		v := math.Float64frombits(bits)
		raw, err := json.Marshal(exact(v))
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		var back exact
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("%v → %s: %v", v, raw, err)
		}
		if b := float64(back); !(math.IsNaN(v) && math.IsNaN(b)) && math.Float64bits(b) != bits {
			t.Errorf("%v → %s → %v", v, raw, b)
		}
	})
}

func TestExactRefusesOtherValues(t *testing.T) {
	for _, raw := range []string{`"nan"`, `"Inf"`, `null`, `"0.5"`, `true`} {
		var x exact
		if err := json.Unmarshal([]byte(raw), &x); err == nil {
			t.Errorf("%s read as %v", raw, float64(x))
		}
	}
}

// A case goes through cases.jsonl unchanged, a missing disc (NaN) included;
// a line with a field this version does not know is refused with its line.
func TestExactCasesRoundTrip(t *testing.T) {
	cases := []Case{
		{Index: 7, Seed: 107, Before: []float64{0.1, 1.0 / 3}, After: []float64{-2e-9, 4}, Steps: []edit.Step{{K: 3, T: 0.1}, {K: 4, T: -6}},
			Scale: 0.123456789012345, VesselDice: 1, LesionArea: 0, DiscShift: math.NaN(), BlobsBefore: 2, BlobsAfter: 5},
		{Index: 8, Seed: 108, Before: []float64{0, 0}, After: []float64{1, 1}, Scale: 1, DiscShift: 1.5},
	}
	path, raw, back := roundTrip(t, cases)
	if !math.IsNaN(back[0].DiscShift) {
		t.Errorf("disc shift %v, want NaN", back[0].DiscShift)
	}
	back[0].DiscShift, cases[0].DiscShift = 0, 0
	cases[1].Steps = []edit.Step{} // read back as an empty list, not nil
	if !reflect.DeepEqual(back, cases) {
		t.Errorf("read back\n%+v\nwant\n%+v", back, cases)
	}
	bad := strings.Replace(string(raw), `"seed":108`, `"seed":108,"colour":1`, 1)
	if _, err := readExact(path, []byte(bad)); err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown field: %v", err)
	}
}

// A region case written before the discriminator's fields existed is
// refused, not read as a discriminator that is sure the picture is real.
func TestExactRefusesRegionWithoutDiscriminatorFields(t *testing.T) {
	cases := []Case{{Index: 1, Seed: 2, Before: []float64{0}, After: []float64{1}, Scale: 1, DiscShift: 0,
		Region: &RegionCase{Area: 0.1, RealismStart: math.NaN(), Realism: 0.25, CompAfter: []float64{1}}}}
	path, raw, back := roundTrip(t, cases)
	if r := back[0].Region; !math.IsNaN(r.RealismStart) || r.Realism != 0.25 {
		t.Errorf("discriminator losses read back as %v, %v", r.RealismStart, r.Realism)
	}
	old := strings.Replace(string(raw), `"discriminator_loss_editor_step":"NaN",`, "", 1)
	if old == string(raw) {
		t.Fatalf("the line has no discriminator_loss_editor_step field: %s", raw)
	}
	if _, err := readExact(path, []byte(old)); err == nil || !strings.Contains(err.Error(), "older latentedit") {
		t.Errorf("a region case without the discriminator's fields: %v", err)
	}
}

// roundTrip writes cases to a cases.jsonl and reads them back.
func roundTrip(t *testing.T, cases []Case) (path string, raw []byte, back []Case) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "cases.jsonl")
	if err := writeExact(path, cases); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(path)
	back, err := readExact(path, raw)
	if err != nil {
		t.Fatal(err)
	}
	return path, raw, back
}
