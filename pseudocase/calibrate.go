package pseudocase

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"latentedit/edit"
	"latentedit/evaluate"
	"latentedit/generator"
	"latentedit/internal/artifact"
	"latentedit/internal/atomicfile"
)

// CalibrationFile is where a calibration is kept, in the editor's folder of
// the work directory or in the shipped pseudocase folder.
const CalibrationFile = "calibration.json"

// Calibration says how an editor moves the oracle's lesion factors: which
// direction serves each factor and the oracle change of every factor per
// unit step along it. A request is turned into steps by solving
// Effect·t = target − before for the requested factors: an open-loop edit,
// so the oracle reading after the edit is a measurement, not a set point.
type Calibration struct {
	FormatVersion int    `json:"format_version"`
	Kind          string `json:"kind"` // "calibration"

	Editor  string   `json:"editor"`
	Method  string   `json:"method"`
	Factors []string `json:"factors"` // the oracle's factors, in its order
	// Direction is the editor direction used for each factor it can move:
	// the conditional one ("detachment|cup_to_disc,…") when the editor has
	// it, else the one named after the factor.
	Direction map[string]int    `json:"direction"`
	DirName   map[string]string `json:"direction_name"`
	// Effect[d][f]: mean oracle change of factor f per unit step along the
	// direction serving factor d, from ±T edits of N latents.
	Effect map[string]map[string]float64 `json:"effect"`
	N      int                           `json:"n"`
	T      float64                       `json:"t"`
	Seed   int64                         `json:"seed"`
}

// calibrationFormat is the calibration JSON layout this build reads and writes.
const calibrationFormat = 1

// chooseDirections maps each oracle factor to the editor direction named for
// it, preferring a conditional direction "factor|…".
func chooseDirections(e edit.Editor, factors []string) (map[string]int, map[string]string) {
	dir, name := map[string]int{}, map[string]string{}
	for _, f := range factors {
		for k, n := range e.Names() {
			if n == f {
				if _, ok := dir[f]; !ok {
					dir[f], name[f] = k, n
				}
			}
		}
		for k, n := range e.Names() {
			if strings.HasPrefix(n, f+"|") {
				dir[f], name[f] = k, n
				break
			}
		}
	}
	return dir, name
}

// Calibrate measures the editor's effect on the oracle along the direction
// of every factor it can move, with ±t edits of n latents from seed (a
// seed range of its own, so calibration and pseudo-cases never share a
// latent). Every network call uses fixed-size batches: the same inputs give
// the same calibration in every shard.
func Calibrate(m *generator.Model, e edit.Editor, editorName string, o *evaluate.Oracle, n int, seed int64, t float64) (*Calibration, error) {
	if n < 1 || !(t > 0) {
		return nil, fmt.Errorf("calibrate: need n ≥ 1 and t > 0, got %d, %g", n, t)
	}
	dir, name := chooseDirections(e, o.Factors)
	if len(dir) == 0 {
		return nil, fmt.Errorf("calibrate: editor %s has no direction named after a factor of the oracle %v (names: %v; run `latentedit evaluate` to name directions)", editorName, o.Factors, e.Names())
	}
	c := &Calibration{Editor: editorName, Method: e.Method(), Factors: o.Factors, Direction: dir, DirName: name,
		Effect: map[string]map[string]float64{}, N: n, T: t, Seed: seed}
	zs := m.Latents(seed, n)
	for _, d := range o.Factors {
		k, ok := dir[d]
		if !ok {
			continue
		}
		edited, err := e.EditBatch(append(append([][]float32(nil), zs...), zs...),
			append(edit.Repeat(edit.Step{K: k, T: float32(t)}, n), edit.Repeat(edit.Step{K: k, T: float32(-t)}, n)...))
		if err != nil {
			return nil, err
		}
		plus, minus := edited[:n], edited[n:]
		rp, err := evaluate.ReadFactors(m, o, plus)
		if err != nil {
			return nil, err
		}
		rm, err := evaluate.ReadFactors(m, o, minus)
		if err != nil {
			return nil, err
		}
		c.Effect[d] = map[string]float64{}
		for f, fn := range o.Factors {
			var s float64
			for i := range zs {
				s += (rp[i][f] - rm[i][f]) / (2 * t)
			}
			c.Effect[d][fn] = s / float64(n)
		}
	}
	return c, nil
}

// Save writes the calibration atomically.
func (c *Calibration) Save(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	c.FormatVersion, c.Kind = calibrationFormat, "calibration"
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(raw, '\n'), atomicfile.DefaultPerm)
}

// LoadCalibration reads a calibration and checks it still fits the editor
// and the oracle it will be used with.
func LoadCalibration(path string, e edit.Editor, o *evaluate.Oracle) (*Calibration, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := &Calibration{}
	if err := json.Unmarshal(raw, c); err != nil {
		return nil, fmt.Errorf("calibration %s: %w", path, err)
	}
	if err := artifact.Check(path, c.FormatVersion, calibrationFormat, c.Kind, "calibration", "", ""); err != nil {
		return nil, fmt.Errorf("calibration: %w", err)
	}
	if strings.Join(c.Factors, ",") != strings.Join(o.Factors, ",") {
		return nil, fmt.Errorf("calibration %s: field factors: %v, the oracle has %v", path, c.Factors, o.Factors)
	}
	if c.Method != e.Method() {
		return nil, fmt.Errorf("calibration %s: field method: %q, the editor is %q", path, c.Method, e.Method())
	}
	for f, k := range c.Direction {
		if k < 0 || k >= e.K() || e.Names()[k] != c.DirName[f] {
			return nil, fmt.Errorf("calibration %s: direction %d for %s is not %q in the editor (names %v): recalibrate", path, k, f, c.DirName[f], e.Names())
		}
		if len(c.Effect[f]) != len(c.Factors) {
			return nil, fmt.Errorf("calibration %s: field effect: %s has %d factors, want %d", path, f, len(c.Effect[f]), len(c.Factors))
		}
	}
	return c, nil
}

// Plan is a request bound to an editor: the directions to move, in order,
// and the inverse of the effect matrix that turns wanted changes into steps.
type Plan struct {
	Factors []string // requested factors, in the oracle's order
	Dirs    []int    // direction for each
	inv     [][]float64
	MaxStep float64
}

// Plan binds a request to this calibration. It fails when the editor has
// no direction for a requested factor, or when its directions cannot tell
// the requested factors apart (a singular effect matrix).
func (c *Calibration) Plan(r Request, maxStep float64) (*Plan, error) {
	targets := r.Targets()
	p := &Plan{MaxStep: maxStep}
	for _, f := range c.Factors {
		if _, ok := targets[f]; !ok {
			continue
		}
		k, ok := c.Direction[f]
		if !ok {
			return nil, fmt.Errorf("editor %s (%s) has no direction for %s (it has %v); name its directions with `latentedit evaluate` or use another --editor", c.Editor, c.Method, f, keys(c.Direction))
		}
		p.Factors, p.Dirs = append(p.Factors, f), append(p.Dirs, k)
	}
	n := len(p.Factors)
	a := make([][]float64, n)
	for i, f := range p.Factors {
		a[i] = make([]float64, n)
		for j, d := range p.Factors {
			a[i][j] = c.Effect[d][f] // change of f per unit step along d's direction
		}
	}
	inv, err := invert(a)
	if err != nil {
		return nil, fmt.Errorf("editor %s: its directions for %v do not move those factors independently (effect matrix %v): %w", c.Editor, p.Factors, a, err)
	}
	p.inv = inv
	return p, nil
}

// Steps returns the edit steps that should take an image whose oracle
// reading is before (in the oracle's factor order) to the request's targets,
// and the factor (≤ 1) they were scaled by. When the solved steps exceed
// MaxStep they are scaled down together, so the edit keeps pointing at the
// requested mix of factors (clamping each step alone would change the mix,
// e.g. move the detachment to another angle) and no request drives a latent
// off the generator's distribution.
func (p *Plan) Steps(c *Calibration, targets map[string]float64, before []float64) ([]edit.Step, float64) {
	idx := map[string]int{}
	for i, f := range c.Factors {
		idx[f] = i
	}
	ts := make([]float64, len(p.Factors))
	var peak float64
	for i := range p.Factors {
		for j, f := range p.Factors {
			ts[i] += p.inv[i][j] * (targets[f] - before[idx[f]])
		}
		peak = math.Max(peak, math.Abs(ts[i]))
	}
	scale := 1.0
	if peak > p.MaxStep {
		scale = p.MaxStep / peak
	}
	steps := make([]edit.Step, len(p.Factors))
	for i, t := range ts {
		steps[i] = edit.Step{K: p.Dirs[i], T: float32(t * scale)}
	}
	return steps, scale
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// invert is Gauss–Jordan with partial pivoting; the matrices here are at
// most 5×5. A pivot below 1e-9 of the largest entry counts as singular.
func invert(a [][]float64) ([][]float64, error) {
	n := len(a)
	m := make([][]float64, n)
	var scale float64
	for i := range a {
		m[i] = make([]float64, 2*n)
		copy(m[i], a[i])
		m[i][n+i] = 1
		for _, v := range a[i] {
			scale = math.Max(scale, math.Abs(v))
		}
	}
	if scale == 0 || math.IsNaN(scale) {
		return nil, fmt.Errorf("zero effect")
	}
	for col := 0; col < n; col++ {
		piv := col
		for r := col + 1; r < n; r++ {
			if math.Abs(m[r][col]) > math.Abs(m[piv][col]) {
				piv = r
			}
		}
		if math.Abs(m[piv][col]) < 1e-9*scale {
			return nil, fmt.Errorf("singular")
		}
		m[col], m[piv] = m[piv], m[col]
		d := m[col][col]
		for j := range m[col] {
			m[col][j] /= d
		}
		for r := 0; r < n; r++ {
			if r != col && m[r][col] != 0 {
				f := m[r][col]
				for j := range m[r] {
					m[r][j] -= f * m[col][j]
				}
			}
		}
	}
	out := make([][]float64, n)
	for i := range m {
		out[i] = m[i][n:]
	}
	return out, nil
}
