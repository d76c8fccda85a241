// Package edit holds the movers: every way latentedit moves a latent code to
// change one thing about an image. The learned ones (linear directions,
// warped RBF fields, curvilinear flows, potential flows) are trained by package discover; the
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

// Editor moves latent codes, a batch at a time: EditBatch(zs, steps)
// returns φ_{k_i}^{t_i}(z_i) for every row i, with steps[i] = (k_i, t_i):
// direction k_i, signed amount t_i. A row's result does not depend on the
// other rows of the call (graph editors run fixed padded chunks), so a
// caller may batch whatever it has. EditBatch never modifies zs. One edits
// a single latent.
type Editor interface {
	Method() string
	K() int
	LatentDim() int
	// Space is the latent space of the model it moves: z, w or w+
	// (generator.Model.InSpace gives the model seen there).
	Space() string
	// Names are the directions' names: "dir 3" until an oracle names it "smile".
	Names() []string
	EditBatch(zs [][]float32, steps []Step) ([][]float32, error)
}

// Step is one edit: direction K by the signed amount T.
type Step struct {
	K int
	T float32
}

// One is φ_k^t(z): the batch of one latent.
func One(e Editor, z []float32, k int, t float32) ([]float32, error) {
	out, err := e.EditBatch([][]float32{z}, []Step{{k, t}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// Repeat is n copies of s: the steps that edit n latents alike.
func Repeat(s Step, n int) []Step {
	out := make([]Step, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// Sequencer is implemented by editors whose sequences are not plain
// compositions of single edits: the curvilinear editor adds every shift in
// its latent space V and maps back once, so edits commute by construction.
type Sequencer interface {
	// EditSequences returns, for every latent zs[i], the latent after each
	// prefix of seqs[i].
	EditSequences(zs [][]float32, seqs [][]Step) ([][][]float32, error)
}

// Apply applies each sequence seqs[i] to zs[i] in order and returns the
// latent after each step (so len(result[i]) == len(seqs[i])). Sequences may
// differ in length. Order matters for every editor but the curvilinear one,
// where the result is the same up to float error. Editors that are not
// Sequencers make one EditBatch call per step position, over every latent
// whose sequence is that long.
func Apply(e Editor, zs [][]float32, seqs [][]Step) ([][][]float32, error) {
	if sq, ok := e.(Sequencer); ok {
		return sq.EditSequences(zs, seqs)
	}
	// Every step is checked before the first batch runs.
	if err := checkSequences(e, zs, seqs); err != nil {
		return nil, err
	}
	out := make([][][]float32, len(zs))
	cur := append([][]float32(nil), zs...)
	for j := 0; ; j++ {
		var rows []int
		var in [][]float32
		var steps []Step
		for i, seq := range seqs {
			if j < len(seq) {
				rows, in, steps = append(rows, i), append(in, cur[i]), append(steps, seq[j])
			}
		}
		if len(rows) == 0 {
			return out, nil
		}
		next, err := e.EditBatch(in, steps)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", j, err)
		}
		for r, i := range rows {
			out[i] = append(out[i], next[r])
			cur[i] = next[r]
		}
	}
}

// ApplyOne is Apply for one latent.
func ApplyOne(e Editor, z []float32, steps []Step) ([][]float32, error) {
	out, err := Apply(e, [][]float32{z}, [][]Step{steps})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// MaxStep bounds |t| of one edit: latents live within a few units of the
// origin (z ~ N(0, I)), and a step of 100 is a request error, not an edit.
const MaxStep = 100

// editChunk is the batch every graph editor runs in: a call is cut into
// chunks of editChunk rows, the last one padded, so that a latent's result
// never depends on how many others share its call (the kernels' results may
// differ in the last bits between batch sizes). 8, as evaluate.ReadChunk:
// measured on the shipped sizes (K 8, d 64), 32 edits took 2.0 ms
// (curvilinear) and 1.8 ms (warped) in chunks of 8 against 3.0 and 2.2 ms in
// chunks of 16, and a single edit a third of the time; chunks of 4 were no
// faster for 32 edits. (Warped was measured walking in float32; it walks in
// float64 since, 15 ms for the 32: see pathEditor.)
const editChunk = 8

// checkBatch checks the arguments of EditBatch; errors name the row when
// there are several.
func checkBatch(e Editor, zs [][]float32, steps []Step) error {
	if len(steps) != len(zs) {
		return fmt.Errorf("edit: %d steps for %d latents", len(steps), len(zs))
	}
	for i, z := range zs {
		err := checkLatent(e, z)
		if err == nil {
			err = checkStep(e, steps[i])
		}
		if err != nil {
			if len(zs) > 1 {
				return fmt.Errorf("latent %d: %w", i, err)
			}
			return err
		}
	}
	return nil
}

// checkSequences checks the arguments of Apply and EditSequences before any
// work; errors name the latent (when there are several) and the step.
func checkSequences(e Editor, zs [][]float32, seqs [][]Step) error {
	if len(seqs) != len(zs) {
		return fmt.Errorf("edit: %d sequences for %d latents", len(seqs), len(zs))
	}
	for i, z := range zs {
		err := checkLatent(e, z)
		for j, s := range seqs[i] {
			if err != nil {
				break
			}
			if err = checkStep(e, s); err != nil {
				err = fmt.Errorf("step %d: %w", j, err)
			}
		}
		if err != nil {
			if len(zs) > 1 {
				return fmt.Errorf("latent %d: %w", i, err)
			}
			return err
		}
	}
	return nil
}

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

// chunks calls run on zs in chunks of editChunk rows, each padded with zero
// rows to editChunk, and returns the unpadded results in order. run gets
// the chunk's rows (flattened, [editChunk·d]) and the index of its first
// row, and returns editChunk·d values.
func chunks(zs [][]float32, d int, run func(flat []float32, first int) ([]float32, error)) ([][]float32, error) {
	out := make([][]float32, 0, len(zs))
	for s := 0; s < len(zs); s += editChunk {
		flat := make([]float32, editChunk*d)
		for i, z := range zs[s:min(len(zs), s+editChunk)] {
			copy(flat[i*d:], z)
		}
		res, err := run(flat, s)
		if err != nil {
			return nil, err
		}
		for i := range min(len(zs)-s, editChunk) {
			out = append(out, res[i*d:(i+1)*d:(i+1)*d])
		}
	}
	return out, nil
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
