package figure

import (
	"encoding/csv"
	"io"
	"os"
	"strconv"

	"latentedit/internal/atomicfile"
)

// Curves is a training history: one row per step, the step first, then one
// value per key. Trainers keep it, plot it and save it as CSV, and a resumed
// run reads it back so its curves continue where they stopped.
type Curves struct {
	Keys []string
	Rows [][]float64
}

// NewCurves starts an empty history of the named values.
func NewCurves(keys ...string) *Curves { return &Curves{Keys: keys} }

// Add appends the values of one step.
func (c *Curves) Add(step int, vals []float64) {
	c.Rows = append(c.Rows, append([]float64{float64(step)}, vals...))
}

// Series returns the curve of one key, named name (the key when empty).
func (c *Curves) Series(key, name string) Series {
	if name == "" {
		name = key
	}
	s := Series{Name: name}
	for i, k := range c.Keys {
		if k != key {
			continue
		}
		for _, r := range c.Rows {
			s.X = append(s.X, r[0])
			s.Y = append(s.Y, r[i+1])
		}
	}
	return s
}

// WriteCSV writes the history atomically: a "step,<keys>" header, then rows.
func (c *Curves) WriteCSV(path string) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write(append([]string{"step"}, c.Keys...))
		for _, r := range c.Rows {
			row := make([]string, len(r))
			for i, v := range r {
				row[i] = strconv.FormatFloat(v, 'g', 7, 64)
			}
			cw.Write(row)
		}
		cw.Flush()
		return cw.Error()
	})
}

// ReadCurves reads the rows of path up to step upto that have one value per
// key. A missing or unreadable file gives an empty history: curves are for
// people, and a run without them still resumes.
func ReadCurves(path string, upto int, keys ...string) *Curves {
	c := NewCurves(keys...)
	f, err := os.Open(path)
	if err != nil {
		return c
	}
	defer f.Close()
	rows, _ := csv.NewReader(f).ReadAll()
	for i, row := range rows {
		if i == 0 || len(row) != len(keys)+1 {
			continue
		}
		r := make([]float64, len(row))
		ok := true
		for j, v := range row {
			x, err := strconv.ParseFloat(v, 64)
			ok = ok && err == nil
			r[j] = x
		}
		if ok && r[0] <= float64(upto) {
			c.Rows = append(c.Rows, r)
		}
	}
	return c
}
