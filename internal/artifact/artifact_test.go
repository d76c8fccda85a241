package artifact

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChecksNameFileAndField: each refusal names the spec or weights file
// and the field; a matching artifact passes.
func TestChecksNameFileAndField(t *testing.T) {
	dir := t.TempDir()
	w := filepath.Join(dir, "w.ckpt")
	if err := os.WriteFile(w, []byte("weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := FileSHA256(w)
	if err != nil || len(sum) != 64 {
		t.Fatalf("sha %q %v", sum, err)
	}
	spec := filepath.Join(dir, "spec.json")
	if err := Check(spec, 1, 1, "oracle", "oracle", w, sum); err != nil {
		t.Fatalf("a good artifact: %v", err)
	}
	for _, tc := range []struct {
		err  error
		want []string
	}{
		{Check(spec, 2, 1, "oracle", "oracle", w, sum), []string{spec, "format_version", "2"}},
		{Check(spec, 1, 1, "segmenter", "oracle", w, sum), []string{spec, "kind", "segmenter"}},
		{Check(spec, 1, 1, "oracle", "oracle", w, strings.Repeat("0", 64)), []string{w, spec, "weights_sha256"}},
		{Check(spec, 1, 1, "oracle", "oracle", w, "abc"), []string{spec, "weights_sha256", "not a sha256"}},
		{Check(spec, 1, 1, "oracle", "oracle", filepath.Join(dir, "missing"), sum), []string{"missing"}},
	} {
		if tc.err == nil {
			t.Errorf("accepted; want an error naming %q", tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(tc.err.Error(), w) {
				t.Errorf("%q does not name %q", tc.err, w)
			}
		}
	}
	if err := Check(spec, 1, 1, "calibration", "calibration", "", ""); err != nil {
		t.Errorf("an artifact without weights: %v", err)
	}
}
