package pseudocase

import (
	"math"
	"testing"
)

// TestGoalsAgainstTolerances: each requested part is met within the issue's
// tolerance and not beyond it; the angle is read from cos/sin and wraps.
func TestGoalsAgainstTolerances(t *testing.T) {
	req, err := ParseRequest("cup:0.7,detachment:0.6@350,haemorrhage:3")
	if err != nil {
		t.Fatal(err)
	}
	fs := []string{Cup, Detachment, "detachment_cos", "detachment_sin", Haemorrhage}
	targets := req.Targets()
	at := func(cup, ext, angle, haem float64) Case {
		a := angle * math.Pi / 180
		return Case{After: []float64{cup, ext, ext * math.Cos(a), ext * math.Sin(a), haem}, Before: make([]float64, 5)}
	}
	// Inside every tolerance (angle 5° across the 0° wrap).
	met, angle := goals(fs, targets, at(0.74, 0.52, 5, 3.9))
	for _, part := range []string{Cup, Detachment, "detachment_angle", Haemorrhage} {
		if !met[part] {
			t.Errorf("%s not met inside its tolerance", part)
		}
	}
	if math.Abs(angle-15) > 1e-9 {
		t.Errorf("angle error %g°, want 15° (350° → 5° across the wrap)", angle)
	}
	// Just outside each.
	met, angle = goals(fs, targets, at(0.76, 0.49, 320, 1.9))
	for _, part := range []string{Cup, Detachment, "detachment_angle", Haemorrhage} {
		if met[part] {
			t.Errorf("%s met outside its tolerance", part)
		}
	}
	if math.Abs(angle-30) > 1e-9 {
		t.Errorf("angle error %g°, want 30°", angle)
	}
	// The summary's fractions: one case meets everything, one nothing.
	s := summarize(&Summary{Factors: fs, Target: targets}, []Case{at(0.7, 0.6, 350, 3), at(0.2, 0.1, 170, 6)})
	for _, part := range []string{Cup, Detachment, "detachment_angle", Haemorrhage} {
		if s.GoalMet[part] != 0.5 {
			t.Errorf("fraction_goal_met[%s] = %g, want 0.5", part, s.GoalMet[part])
		}
	}
	if s.AllGoalsMet != 0.5 || s.AngleError == nil || math.Abs(*s.AngleError-90) > 1e-9 {
		t.Errorf("all goals %g, mean angle error %v; want 0.5 and 90°", s.AllGoalsMet, s.AngleError)
	}
	// Without a requested angle there is no angle goal nor error.
	req2, _ := ParseRequest("detachment:0.6")
	met, angle = goals(fs, req2.Targets(), at(0.7, 0.6, 10, 3))
	if _, ok := met["detachment_angle"]; ok || !math.IsNaN(angle) || !met[Detachment] {
		t.Errorf("no angle requested: met %v, angle %g", met, angle)
	}
}
