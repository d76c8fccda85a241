package study

import (
	"slices"
	"testing"
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

// The sequential grid shows the study's six factors on faces, and each
// other dataset's own factors (at most six) where those are not read.
func TestSequenceFactors(t *testing.T) {
	faces := []string{"background", "bangs", "eye_colour", "face_width", "hair_colour", "hair_length", "pitch", "skin_tone", "smile", "yaw"}
	if got := sequenceFactors(faces); !slices.Equal(got, SequenceFactors) {
		t.Errorf("faces: %v", got)
	}
	digits := []string{"thickness", "slant", "width", "height"}
	if got := sequenceFactors(digits); !slices.Equal(got, digits) {
		t.Errorf("mnist: %v", got)
	}
	many := []string{"a", "b", "c", "d", "e", "f", "g"}
	if got := sequenceFactors(many); len(got) != 6 || got[5] != "f" {
		t.Errorf("seven factors: %v", got)
	}
}
