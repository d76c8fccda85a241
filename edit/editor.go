// Package edit holds the movers: every way latentedit moves a latent code to
// change one thing about an image. The learned ones (linear directions,
// warped RBF fields, curvilinear flows) are trained by package discover; the
// closed-form and supervised peers (GANSpace, SeFa, InterFaceGAN) are fitted
// here directly. All of them are Editors, saved and loaded the same way.
//
// This package never imports evaluate or discover: it moves latents, it does
// not judge the moves.
package edit

import (
	"fmt"
	"math"
)

// Editor moves latent codes. Edit(z, k, t) is φ_k^t(z): direction k, signed
// amount t. Edit never modifies z.
type Editor interface {
	Method() string
	K() int
	LatentDim() int
	// Names are the directions' names: "dir 3" until an oracle names it "smile".
	Names() []string
	Edit(z []float32, k int, t float32) ([]float32, error)
}

// Step is one edit of a sequence.
type Step struct {
	K int
	T float32
}

// Sequencer is implemented by editors whose sequences are not plain
// compositions of single edits: the curvilinear editor adds every shift in
// its latent space V and maps back once, so edits commute by construction.
type Sequencer interface {
	// EditSequence returns the latent after each prefix of steps.
	EditSequence(z []float32, steps []Step) ([][]float32, error)
}

// Apply applies steps in order and returns the latent after each step (so
// len(result) == len(steps)). Order matters for every editor but the
// curvilinear one, where the result is the same up to float error.
func Apply(e Editor, z []float32, steps []Step) ([][]float32, error) {
	if err := checkLatent(e, z); err != nil {
		return nil, err
	}
	for i, s := range steps {
		if err := checkStep(e, s); err != nil {
			return nil, fmt.Errorf("step %d: %w", i, err)
		}
	}
	if sq, ok := e.(Sequencer); ok {
		return sq.EditSequence(z, steps)
	}
	out := make([][]float32, 0, len(steps))
	cur := z
	for _, s := range steps {
		next, err := e.Edit(cur, s.K, s.T)
		if err != nil {
			return nil, err
		}
		out = append(out, next)
		cur = next
	}
	return out, nil
}

// MaxStep bounds |t| of one edit: latents live within a few units of the
// origin (z ~ N(0, I)), and a step of 100 is a request error, not an edit.
const MaxStep = 100

func checkLatent(e Editor, z []float32) error {
	if len(z) != e.LatentDim() {
		return fmt.Errorf("edit: latent has %d values, the editor takes %d", len(z), e.LatentDim())
	}
	for i, v := range z {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("edit: latent value %d is %v", i, v)
		}
	}
	return nil
}

func checkStep(e Editor, s Step) error {
	if s.K < 0 || s.K >= e.K() {
		return fmt.Errorf("edit: direction %d out of range [0, %d)", s.K, e.K())
	}
	if math.IsNaN(float64(s.T)) || math.Abs(float64(s.T)) > MaxStep {
		return fmt.Errorf("edit: step %v is not a number in [-%d, %d]", s.T, MaxStep, MaxStep)
	}
	return nil
}

// DefaultNames returns "dir 0" … "dir k-1".
func DefaultNames(k int) []string {
	n := make([]string, k)
	for i := range n {
		n[i] = fmt.Sprintf("dir %d", i)
	}
	return n
}

// UniqueNames is the one naming rule for directions: every name stays
// addressable. A name met again, or an empty one, gets the smallest number
// n ≥ 2 that makes "name n" (or "dir i n" for an empty i-th name) differ from
// every name in the list and every name given so far; first occurrences keep
// their names. ["a", "a", "a 2"] becomes ["a", "a 3", "a 2"].
func UniqueNames(names []string) []string {
	out := make([]string, len(names))
	taken := map[string]bool{}
	first := map[string]int{}
	for i, n := range names {
		if _, ok := first[n]; !ok && n != "" {
			first[n] = i
			taken[n] = true
		}
	}
	for i, n := range names {
		if j, ok := first[n]; ok && j == i {
			out[i] = n
			continue
		}
		base := n
		if base == "" {
			base = fmt.Sprintf("dir %d", i)
			if !taken[base] {
				out[i], taken[base] = base, true
				continue
			}
		}
		for c := 2; ; c++ {
			if cand := fmt.Sprintf("%s %d", base, c); !taken[cand] {
				out[i], taken[cand] = cand, true
				break
			}
		}
	}
	return out
}

// Direction resolves a direction given by index ("3") or by name ("smile").
func Direction(e Editor, s string) (int, error) {
	for i, n := range e.Names() {
		if n == s {
			return i, nil
		}
	}
	var k int
	if _, err := fmt.Sscanf(s, "%d", &k); err == nil && fmt.Sprint(k) == s {
		if k < 0 || k >= e.K() {
			return 0, fmt.Errorf("direction %d out of range [0, %d)", k, e.K())
		}
		return k, nil
	}
	return 0, fmt.Errorf("unknown direction %q (names: %v)", s, e.Names())
}
