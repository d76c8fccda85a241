package evaluate

import (
	"math"
	"math/rand/v2"
	"testing"

	"latentedit/edit"
	"latentedit/engine"
)

func TestHungarianFindsPermutation(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 20; trial++ {
		n := 2 + r.IntN(7)
		perm := r.Perm(n)
		score := make([][]float64, n)
		for i := range score {
			score[i] = make([]float64, n+2) // two unmatched extra columns
			for j := range score[i] {
				score[i][j] = 0.3 * r.Float64()
			}
			score[i][perm[i]] = 1 + r.Float64()
		}
		got := Hungarian(score)
		for i := range perm {
			if got[i] != perm[i] {
				t.Fatalf("trial %d: got %v, want %v", trial, got, perm)
			}
		}
	}
	// More rows than columns: one row is left unassigned.
	got := Hungarian([][]float64{{1, 0}, {0, 1}, {0.5, 0.5}})
	if got[0] != 0 || got[1] != 1 || got[2] != -1 {
		t.Fatalf("rectangular: %v", got)
	}
}

// A linear editor's edits are additions: zero commutativity error.
func TestLinearCommutesExactly(t *testing.T) {
	be, _ := engine.NewBackend("")
	e, err := edit.NewFixed("ganspace", [][]float32{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 1}}, nil, be)
	if err != nil {
		t.Fatal(err)
	}
	zs := [][]float32{{0.5, -1, 2, 0.1}, {1, 1, 1, 1}}
	c, err := Commutativity(e, zs, 1.5, -2)
	if err != nil {
		t.Fatal(err)
	}
	if c > 1e-6 {
		t.Fatalf("linear commutativity error %g, want 0", c)
	}
}

func TestMatchUsesEffectMatrix(t *testing.T) {
	a := &AttributeChange{Factors: []string{"smile", "bangs", "yaw"}, Directions: []string{"d0", "d1", "d2"},
		Effect: [][]float64{{0.01, 0.02, 0.9}, {0.5, 0.05, 0.1}, {0.02, -0.03, 0.02}}}
	m := a.Match()
	if m[0] != 2 || m[1] != 0 || m[2] != 1 {
		t.Fatalf("match %v, want [2 0 1]", m)
	}
	eff, leak := a.EffectAndLeakage(m)
	if eff[0] != 1 || math.Abs(leak[0]-0.21) > 1e-9 || math.Abs(eff[2]-0.6) > 1e-9 {
		t.Fatalf("effect %v leakage %v", eff, leak)
	}
}
