package progress

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, 3, "train", true)
	b.Set(1, map[string]float64{"loss": 0.5})
	b.Set(2, nil) // throttled: under a second since the last line
	b.Finish()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines (first, last), got %d: %q", len(lines), buf.String())
	}
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &last); err != nil {
		t.Fatal(err)
	}
	if last["step"] != 3.0 || last["loss"] != 0.5 || last["task"] != "train" {
		t.Fatalf("last line %v", last)
	}
}

func TestBarShowsMetrics(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, 10, "train", false)
	b.Set(10, map[string]float64{"loss_d": 1.25})
	if !strings.Contains(buf.String(), "loss_d=1.25") {
		t.Fatalf("bar output %q lacks the metric", buf.String())
	}
}
