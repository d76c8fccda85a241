// Package progress reports the advance of long-running commands: a terminal
// progress bar (step, it/s, ETA and the latest metrics) for people, or one
// JSON object per line for scripts (--json). Every long command uses it, so
// all of them look and parse alike.
package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Bar is a progress reporter. The zero value is not usable; use New.
type Bar struct {
	mu       sync.Mutex
	w        io.Writer
	json     bool
	total    int
	what     string
	start    time.Time
	last     time.Time
	bar      *progressbar.ProgressBar
	done     int
	lastDone int
	metrics  map[string]float64
}

// New starts a reporter for total steps of the task named what. With
// jsonLines it writes at most one JSON line per second (and the last step);
// otherwise it draws a bar on w.
func New(w io.Writer, total int, what string, jsonLines bool) *Bar {
	if w == nil {
		w = io.Discard
	}
	b := &Bar{w: w, json: jsonLines, total: total, what: what, start: time.Now()}
	if !jsonLines {
		b.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		)
	}
	return b
}

// Set reports that done steps are finished, with the latest metrics
// (losses, accuracy); metrics may be nil.
func (b *Bar) Set(done int, metrics map[string]float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = done
	if metrics != nil {
		b.metrics = metrics
	}
	if b.json {
		now := time.Now()
		if (now.Sub(b.last) < time.Second && done < b.total) || (done == b.lastDone && !b.last.IsZero()) {
			return
		}
		b.lastDone = done
		b.last = now
		elapsed := now.Sub(b.start).Seconds()
		rec := map[string]any{"task": b.what, "step": done, "total": b.total, "elapsed_s": round3(elapsed)}
		if elapsed > 0 {
			rec["it_per_s"] = round3(float64(done) / elapsed)
		}
		for k, v := range b.metrics {
			rec[k] = v
		}
		line, _ := json.Marshal(rec)
		fmt.Fprintln(b.w, string(line))
		return
	}
	if len(b.metrics) > 0 {
		b.bar.Describe(b.what + " " + formatMetrics(b.metrics))
	}
	_ = b.bar.Set(done)
}

// Finish completes the bar.
func (b *Bar) Finish() {
	b.Set(b.total, nil)
}

func formatMetrics(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%.4g", k, m[k])
	}
	return strings.Join(parts, " ")
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
