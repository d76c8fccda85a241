package study

import "testing"

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
