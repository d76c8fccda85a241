package evaluate

import (
	"fmt"
	"math"

	"latentedit/edit"
	"latentedit/generator"
)

// AttributeChange is the mean oracle change of every factor per unit step
// along every direction: Effect[k][f] = E_z[(o_f(G(φ_k^{+t}z)) − o_f(G(φ_k^{−t}z))) / 2t].
// Hue factors are differenced on the circle (a change of 0.9 is −0.1).
type AttributeChange struct {
	Directions []string
	Factors    []string
	Effect     [][]float64
}

// MeasureAttributeChange edits n latents (seeds from seed) by ±t along each
// direction and reads the results with the oracle.
func MeasureAttributeChange(m *generator.Model, e edit.Editor, o *Oracle, n int, seed int64, t float32) (*AttributeChange, error) {
	if t <= 0 || n < 1 {
		return nil, fmt.Errorf("attribute change: need t > 0 and n ≥ 1, got %g, %d", t, n)
	}
	zs := m.Latents(seed, n)
	ac := &AttributeChange{Directions: e.Names(), Factors: o.Factors, Effect: make([][]float64, e.K())}
	// One batch of every edit: for direction k, rows [2kn, 2kn+n) are +t
	// and the next n are −t.
	var rows [][]float32
	var steps []edit.Step
	for k := 0; k < e.K(); k++ {
		for _, sign := range []float32{1, -1} {
			rows = append(rows, zs...)
			steps = append(steps, edit.Repeat(edit.Step{K: k, T: sign * t}, n)...)
		}
	}
	edited, err := e.EditBatch(rows, steps)
	if err != nil {
		return nil, err
	}
	for k := 0; k < e.K(); k++ {
		plus, minus := flatten(edited[2*k*n:(2*k+1)*n]), flatten(edited[(2*k+1)*n:(2*k+2)*n])
		rp, err := readFactors(m, o, plus, n)
		if err != nil {
			return nil, err
		}
		rm, err := readFactors(m, o, minus, n)
		if err != nil {
			return nil, err
		}
		ac.Effect[k] = make([]float64, len(o.Factors))
		for i := 0; i < n; i++ {
			for f, name := range o.Factors {
				d := FactorDiff(name, rp[i][f], rm[i][f])
				ac.Effect[k][f] += d / (2 * float64(t)) / float64(n)
			}
		}
	}
	return ac, nil
}

func readFactors(m *generator.Model, o *Oracle, z []float32, n int) ([][]float64, error) {
	pix, err := m.GenerateFloats(z, n)
	if err != nil {
		return nil, err
	}
	return o.Predict(pix, n)
}

// Match assigns each direction at most one factor, and each factor at most
// one direction, maximising the total |effect| scaled by each factor's
// largest effect over all directions (so factors on small scales count as
// much as large ones): the Hungarian method on that score. It returns, per
// direction, the factor index or −1.
func (a *AttributeChange) Match() []int {
	k, f := len(a.Effect), len(a.Factors)
	scale := make([]float64, f)
	for j := 0; j < f; j++ {
		for i := 0; i < k; i++ {
			scale[j] = math.Max(scale[j], math.Abs(a.Effect[i][j]))
		}
	}
	score := make([][]float64, k)
	for i := range score {
		score[i] = make([]float64, f)
		for j := range score[i] {
			if scale[j] > 0 {
				score[i][j] = math.Abs(a.Effect[i][j]) / scale[j]
			}
		}
	}
	return Hungarian(score)
}

// EffectAndLeakage summarises a matched direction: the effect on its factor
// (|Effect| normalised by the factor's largest over directions) and the
// leakage, the mean normalised |Effect| on every other factor.
func (a *AttributeChange) EffectAndLeakage(match []int) (effect, leakage []float64) {
	f := len(a.Factors)
	scale := make([]float64, f)
	for j := 0; j < f; j++ {
		for i := range a.Effect {
			scale[j] = math.Max(scale[j], math.Abs(a.Effect[i][j]))
		}
	}
	norm := func(i, j int) float64 {
		if scale[j] == 0 {
			return 0
		}
		return math.Abs(a.Effect[i][j]) / scale[j]
	}
	effect, leakage = make([]float64, len(match)), make([]float64, len(match))
	for i, j := range match {
		if j < 0 {
			effect[i], leakage[i] = math.NaN(), math.NaN()
			continue
		}
		effect[i] = norm(i, j)
		for q := 0; q < f; q++ {
			if q != j {
				leakage[i] += norm(i, q) / float64(f-1)
			}
		}
	}
	return effect, leakage
}

// Hungarian returns the row→column assignment maximising the total score of
// a rows×cols matrix (rectangular allowed; unassigned rows get −1). O(n³).
func Hungarian(score [][]float64) []int {
	rows := len(score)
	if rows == 0 {
		return nil
	}
	cols := len(score[0])
	n := max(rows, cols)
	maxv := 0.0
	for _, r := range score {
		for _, v := range r {
			maxv = math.Max(maxv, v)
		}
	}
	// Minimise cost = maxv − score on an n×n padded matrix (padding costs maxv).
	cost := func(i, j int) float64 {
		if i < rows && j < cols {
			return maxv - score[i][j]
		}
		return maxv
	}
	u, v := make([]float64, n+1), make([]float64, n+1)
	p, way := make([]int, n+1), make([]int, n+1)
	for i := 1; i <= n; i++ {
		p[0] = i
		j0 := 0
		minv := make([]float64, n+1)
		used := make([]bool, n+1)
		for j := range minv {
			minv[j] = math.Inf(1)
		}
		for {
			used[j0] = true
			i0, delta, j1 := p[j0], math.Inf(1), 0
			for j := 1; j <= n; j++ {
				if used[j] {
					continue
				}
				cur := cost(i0-1, j-1) - u[i0] - v[j]
				if cur < minv[j] {
					minv[j], way[j] = cur, j0
				}
				if minv[j] < delta {
					delta, j1 = minv[j], j
				}
			}
			for j := 0; j <= n; j++ {
				if used[j] {
					u[p[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if p[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}
	match := make([]int, rows)
	for i := range match {
		match[i] = -1
	}
	for j := 1; j <= n; j++ {
		if i := p[j] - 1; i >= 0 && i < rows && j-1 < cols {
			match[i] = j - 1
		}
	}
	return match
}
