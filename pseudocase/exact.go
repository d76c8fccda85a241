package pseudocase

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"

	"latentedit/edit"
	"latentedit/internal/atomicfile"
)

// exactCase is a Case as cases.jsonl holds it, one JSON object a line. The
// CSV rounds to four decimals for people; this file keeps every bit, so
// the summary of merged shards can be recomputed to the same float64s as
// the whole run's.
type exactCase struct {
	Case        int          `json:"case"`
	Seed        int64        `json:"seed"`
	Before      []exact      `json:"before"`
	After       []exact      `json:"after"`
	Steps       []exactStep  `json:"steps"`
	Scale       exact        `json:"step_scale"`
	VesselDice  exact        `json:"vessel_dice_outside_lesion"`
	LesionArea  exact        `json:"lesion_area_fraction"`
	DiscShift   exact        `json:"disc_shift_px"` // "NaN" when no disc was found
	BlobsBefore int          `json:"lesion_blobs_before"`
	BlobsAfter  int          `json:"lesion_blobs_after"`
	Region      *exactRegion `json:"region,omitempty"`
}

// exactRegion is a RegionCase as cases.jsonl holds it.
type exactRegion struct {
	Area      exact `json:"region_area_fraction"`
	KeepStart exact `json:"mse_outside_region_editor_step"`
	Keep      exact `json:"mse_outside_region_refined"`
	GoalStart exact `json:"goal_loss_editor_step"`
	Goal      exact `json:"goal_loss_refined"`
	// "NaN" when the model ships no discriminator; pointers so that a file
	// written before they existed is refused, not read as D's certainty.
	RealismStart   *exact  `json:"discriminator_loss_editor_step"`
	Realism        *exact  `json:"discriminator_loss_refined"`
	Seam           exact   `json:"seam_energy_refined"`
	SeamComposite  exact   `json:"seam_energy_composite"`
	CompAfter      []exact `json:"composite_after"`
	CompVesselDice exact   `json:"composite_vessel_dice_outside_lesion"`
	CompLesionArea exact   `json:"composite_lesion_area_fraction"`
	CompDiscShift  exact   `json:"composite_disc_shift_px"`
}

type exactStep struct {
	K int   `json:"k"`
	T exact `json:"t"` // a float32, exact in a float64
}

// exact is a float64 written as the shortest decimal that reads back to the
// same bits, and NaN, +Inf, -Inf as those strings: JSON has no number for
// them, and DiscShift is NaN whenever a disc is not found.
type exact float64

func (x exact) MarshalJSON() ([]byte, error) {
	v := float64(x)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

func (x *exact) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"NaN"`:
		*x = exact(math.NaN())
		return nil
	case `"+Inf"`:
		*x = exact(math.Inf(1))
		return nil
	case `"-Inf"`:
		*x = exact(math.Inf(-1))
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("%s is not a number, \"NaN\", \"+Inf\" or \"-Inf\"", b)
	}
	*x = exact(v)
	return nil
}

// convert is a slice of float64s as exacts, or back.
func convert[To, From ~float64](v []From) []To {
	out := make([]To, len(v))
	for i, x := range v {
		out[i] = To(x)
	}
	return out
}

func toExact(c Case) exactCase {
	steps := make([]exactStep, len(c.Steps))
	for i, s := range c.Steps {
		steps[i] = exactStep{s.K, exact(s.T)}
	}
	return exactCase{Case: c.Index, Seed: c.Seed, Before: convert[exact](c.Before), After: convert[exact](c.After), Steps: steps,
		Scale: exact(c.Scale), VesselDice: exact(c.VesselDice), LesionArea: exact(c.LesionArea), DiscShift: exact(c.DiscShift),
		BlobsBefore: c.BlobsBefore, BlobsAfter: c.BlobsAfter, Region: toExactRegion(c.Region)}
}

func toExactRegion(r *RegionCase) *exactRegion {
	if r == nil {
		return nil
	}
	return &exactRegion{Area: exact(r.Area), KeepStart: exact(r.KeepStart), Keep: exact(r.Keep), GoalStart: exact(r.GoalStart),
		Goal: exact(r.Goal), RealismStart: ptrExact(r.RealismStart), Realism: ptrExact(r.Realism), Seam: exact(r.Seam), SeamComposite: exact(r.SeamComposite), CompAfter: convert[exact](r.CompAfter),
		CompVesselDice: exact(r.CompVesselDice), CompLesionArea: exact(r.CompLesionArea), CompDiscShift: exact(r.CompDiscShift)}
}

func (e *exactRegion) toRegion() *RegionCase {
	if e == nil {
		return nil
	}
	return &RegionCase{Area: float64(e.Area), KeepStart: float64(e.KeepStart), Keep: float64(e.Keep), GoalStart: float64(e.GoalStart),
		Goal: float64(e.Goal), RealismStart: float64(*e.RealismStart), Realism: float64(*e.Realism), Seam: float64(e.Seam), SeamComposite: float64(e.SeamComposite), CompAfter: convert[float64](e.CompAfter),
		CompVesselDice: float64(e.CompVesselDice), CompLesionArea: float64(e.CompLesionArea), CompDiscShift: float64(e.CompDiscShift)}
}

func (e exactCase) toCase() Case {
	steps := make([]edit.Step, len(e.Steps))
	for i, s := range e.Steps {
		steps[i] = edit.Step{K: s.K, T: float32(s.T)}
	}
	return Case{Index: e.Case, Seed: e.Seed, Before: convert[float64](e.Before), After: convert[float64](e.After), Steps: steps,
		Scale: float64(e.Scale), VesselDice: float64(e.VesselDice), LesionArea: float64(e.LesionArea), DiscShift: float64(e.DiscShift),
		BlobsBefore: e.BlobsBefore, BlobsAfter: e.BlobsAfter, Region: e.Region.toRegion()}
}

// writeExact writes cases one a line, with no header, so the files of the
// shards in order concatenate to the whole run's, like the CSVs.
func writeExact(path string, cases []Case) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, c := range cases {
			if err := enc.Encode(toExact(c)); err != nil {
				return fmt.Errorf("pseudocase: %s: case %d: %w", path, c.Index, err)
			}
		}
		return nil
	})
}

// readExact reads what writeExact wrote; name is the file's path for errors.
// Unknown fields are refused: they mean another version wrote the file.
func readExact(name string, raw []byte) ([]Case, error) {
	var cases []Case
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 1<<16), 1<<24)
	for line := 1; sc.Scan(); line++ {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var e exactCase
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, line, err)
		}
		if r := e.Region; r != nil && (r.RealismStart == nil || r.Realism == nil) {
			return nil, fmt.Errorf("%s line %d: no discriminator_loss fields: written by an older latentedit; run the shard again", name, line)
		}
		cases = append(cases, e.toCase())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return cases, nil
}

func ptrExact(v float64) *exact {
	x := exact(v)
	return &x
}
