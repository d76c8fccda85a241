package kernels

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
)

// EnvOpProfile, set to 1, times every node the pure-Go backend runs, by op
// type and output shape; OpProfile reports the totals. It is how the tables
// of "where the time goes" in docs/performance.md were made: pprof sees one
// executor function for all binary ops and cannot tell a bias add from an
// Adam update, this can.
const EnvOpProfile = "LATENTEDIT_OP_PROFILE"

var opProfile struct {
	once  sync.Once
	mu    sync.Mutex
	stats map[opKey]*opStat
}

type opKey struct {
	op    backends.OpType
	shape string
}

type opStat struct {
	calls int
	total time.Duration
}

// InstallOpProfile wraps every executor in simplego's table with a timer.
// Called from NewBackend, after every init has installed its fast executor,
// so the timers wrap the executors that really run.
func InstallOpProfile() {
	if os.Getenv(EnvOpProfile) != "1" || simplegoHooks.reason != "" {
		return
	}
	opProfile.once.Do(func() {
		opProfile.stats = map[opKey]*opStat{}
		for op := range simplegoNodeExecutors {
			inner := simplegoNodeExecutors[op]
			if inner == nil {
				continue
			}
			op := backends.OpType(op)
			simplegoNodeExecutors[op] = func(be *simplego.Backend, node *simplego.Node, in []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
				t0 := time.Now()
				out, err := inner(be, node, in, owned)
				d := time.Since(t0)
				shape, _ := nodeShapeAndData(node)
				k := opKey{op, shape.String()}
				opProfile.mu.Lock()
				s := opProfile.stats[k]
				if s == nil {
					s = &opStat{}
					opProfile.stats[k] = s
				}
				s.calls++
				s.total += d
				opProfile.mu.Unlock()
				return out, err
			}
		}
	})
}

// OpProfile returns the top n (op, shape) rows by time since the last call,
// with totals per op type, and resets the counters; "" when profiling is off.
func OpProfile(n int, perStep int) string {
	if opProfile.stats == nil {
		return ""
	}
	opProfile.mu.Lock()
	stats := opProfile.stats
	opProfile.stats = map[opKey]*opStat{}
	opProfile.mu.Unlock()
	if perStep < 1 {
		perStep = 1
	}
	type row struct {
		k opKey
		s opStat
	}
	var rows []row
	byOp := map[backends.OpType]*opStat{}
	var all time.Duration
	for k, s := range stats {
		rows = append(rows, row{k, *s})
		t := byOp[k.op]
		if t == nil {
			t = &opStat{}
			byOp[k.op] = t
		}
		t.calls += s.calls
		t.total += s.total
		all += s.total
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].s.total > rows[j].s.total })
	var b strings.Builder
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 / float64(perStep) }
	fmt.Fprintf(&b, "all ops: %.1f ms per step\nby op type (ms per step, calls per step):\n", ms(all))
	var ops []backends.OpType
	for op := range byOp {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool { return byOp[ops[i]].total > byOp[ops[j]].total })
	for _, op := range ops {
		fmt.Fprintf(&b, "  %-22s %8.2f %6d\n", op, ms(byOp[op].total), byOp[op].calls/perStep)
	}
	fmt.Fprintf(&b, "top %d (op, output shape):\n", n)
	for i, r := range rows {
		if i == n {
			break
		}
		fmt.Fprintf(&b, "  %-22s %-28s %8.2f %6d\n", r.k.op, r.k.shape, ms(r.s.total), r.s.calls/perStep)
	}
	return b.String()
}
