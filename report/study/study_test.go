package study

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"latentedit/edit"
	"latentedit/engine"
)

func TestStepFor(t *testing.T) {
	for _, c := range []struct {
		effect, want float64
		maxT, t      float32
	}{
		{0.2, 0.4, 6, 2},   // 0.4 / 0.2
		{-0.2, 0.4, 6, -2}, // sign follows the effect
		{0.001, 0.4, 6, 6}, // a weak direction is capped
		{10, 0.4, 6, 0.5},  // a strong one still moves visibly
		{0, 0.4, 3, 3},     // no effect: the cap, not a division by 0
	} {
		if got := stepFor(c.effect, c.want, c.maxT); got != c.t {
			t.Errorf("stepFor(%g, %g, %g) = %g, want %g", c.effect, c.want, c.maxT, got, c.t)
		}
	}
}

func TestSetNamesNumbersRepeats(t *testing.T) {
	be, _ := engine.NewBackend("")
	e, err := edit.NewFixed("sefa", [][]float32{{1, 0}, {0, 1}, {1, 1}}, nil, be)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := edit.Save(dir, e, nil); err != nil {
		t.Fatal(err)
	}
	if err := SetNames(dir, []string{"smile", "smile", "yaw"}); err != nil {
		t.Fatal(err)
	}
	back, err := edit.Load(dir, 2, be)
	if err != nil {
		t.Fatal(err)
	}
	if n := back.Names(); n[0] != "smile" || n[1] != "smile 2" || n[2] != "yaw" {
		t.Fatalf("names %v", n)
	}
	if err := SetNames(dir, []string{"a"}); err == nil || !strings.Contains(err.Error(), "1 names for k = 3") {
		t.Fatalf("wrong count: %v", err)
	}
	os.WriteFile(filepath.Join(dir, edit.SpecFile), []byte("{"), 0o644)
	if err := SetNames(dir, []string{"a", "b", "c"}); err == nil {
		t.Fatal("corrupt editor.json accepted")
	}
}
