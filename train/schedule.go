package train

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Schedule is a learning-rate schedule: the multiplier of a trainer's base
// rate at each step. The zero value is the constant rate.
type Schedule struct {
	// Kind is "constant" (or ""), "step" or "cosine".
	Kind string `json:"kind,omitempty"`
	// At is, for "step", the fraction of the run after which the rate is
	// multiplied by Factor.
	At float64 `json:"at,omitempty"`
	// Factor is the multiplier after the drop ("step") or at the last step
	// ("cosine"; 0 decays to zero).
	Factor float64 `json:"factor,omitempty"`
	// Warmup is a number of first steps over which the multiplier rises
	// linearly from 1/Warmup to 1 (GAN and flow trainers are fragile while
	// Adam's second moments are still near zero).
	Warmup int `json:"warmup,omitempty"`
}

// Validate reports the first field out of its range.
func (s Schedule) Validate() error {
	switch {
	case s.Kind != "" && s.Kind != "constant" && s.Kind != "step" && s.Kind != "cosine":
		return fmt.Errorf("lr schedule: kind %q (constant, step, cosine)", s.Kind)
	case s.Kind == "step" && !(s.At > 0 && s.At < 1):
		return fmt.Errorf("lr schedule: step at %g, want a fraction of the run in (0, 1)", s.At)
	case s.Kind == "step" && !(s.Factor > 0):
		return fmt.Errorf("lr schedule: step factor %g, want > 0", s.Factor)
	case s.Kind == "cosine" && !(s.Factor >= 0 && s.Factor <= 1):
		return fmt.Errorf("lr schedule: cosine final factor %g, want [0, 1]", s.Factor)
	case s.Warmup < 0:
		return fmt.Errorf("lr schedule: warmup %d < 0", s.Warmup)
	}
	return nil
}

// Scale is the multiplier of step s (0-based) of a run of total steps. It
// depends on nothing else, so a resumed run sets the same rates.
func (s Schedule) Scale(step, total int) float64 {
	f := 1.0
	switch s.Kind {
	case "step":
		if step >= int(s.At*float64(total)) {
			f = s.Factor
		}
	case "cosine":
		if total > 1 {
			p := float64(step) / float64(total-1)
			f = s.Factor + (1-s.Factor)*0.5*(1+math.Cos(math.Pi*p))
		}
	}
	if step < s.Warmup {
		f *= float64(step+1) / float64(s.Warmup)
	}
	return f
}

// String is the form ParseSchedule reads.
func (s Schedule) String() string {
	var b string
	switch s.Kind {
	case "step":
		b = fmt.Sprintf("step:%g:%g", s.At, s.Factor)
	case "cosine":
		b = fmt.Sprintf("cosine:%g", s.Factor)
	default:
		b = "constant"
	}
	if s.Warmup > 0 {
		b += fmt.Sprintf("+warmup:%d", s.Warmup)
	}
	return b
}

// ParseSchedule reads "constant", "step:AT:FACTOR" (e.g. "step:0.75:0.1",
// a tenfold drop for the last quarter), "cosine" or "cosine:FINAL", each
// optionally followed by "+warmup:N".
func ParseSchedule(text string) (Schedule, error) {
	var s Schedule
	main, warm, hasWarm := strings.Cut(text, "+")
	if hasWarm {
		n, ok := strings.CutPrefix(warm, "warmup:")
		w, err := strconv.Atoi(n)
		if !ok || err != nil {
			return s, fmt.Errorf("lr schedule %q: %q is not warmup:N with an integer N", text, warm)
		}
		s.Warmup = w
	}
	parts := strings.Split(main, ":")
	num := func(i int) (float64, error) {
		v, err := strconv.ParseFloat(parts[i], 64)
		if err != nil {
			return 0, fmt.Errorf("lr schedule %q: %q is not a number", text, parts[i])
		}
		return v, nil
	}
	var err error
	switch {
	case parts[0] == "constant" && len(parts) == 1:
		s.Kind = "constant"
	case parts[0] == "step" && len(parts) == 3:
		s.Kind = "step"
		if s.At, err = num(1); err == nil {
			s.Factor, err = num(2)
		}
	case parts[0] == "cosine" && len(parts) <= 2:
		s.Kind = "cosine"
		if len(parts) == 2 {
			s.Factor, err = num(1)
		}
	default:
		return s, fmt.Errorf("lr schedule %q: want constant, step:AT:FACTOR, cosine or cosine:FINAL, optionally +warmup:N", text)
	}
	if err != nil {
		return s, err
	}
	return s, s.Validate()
}

// The multiplier lives in a context variable that the loop sets before each
// step: the compiled step reads it like any weight, so one executable serves
// the whole schedule.
const (
	lrScope = "/train"
	lrName  = "lr_scale"
)

// LRScale returns the running step's learning-rate multiplier as a node of
// g, for engine.Adam's Scale. A trainer run by Loop passes it to every Adam
// of its step graph.
func LRScale(ctx *context.Context, g *graph.Graph) *graph.Node {
	return lrVariable(ctx).ValueGraph(g)
}

func lrVariable(ctx *context.Context) *context.Variable {
	return ctx.InAbsPath(lrScope).Checked(false).VariableWithValue(lrName, float32(1)).SetTrainable(false)
}

// Set parses text into s, so that a Schedule is a flag.Value
// (--lr-schedule step:0.75:0.1).
func (s *Schedule) Set(text string) error {
	v, err := ParseSchedule(text)
	if err == nil {
		*s = v
	}
	return err
}
