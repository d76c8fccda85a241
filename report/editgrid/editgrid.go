// Package editgrid draws what an edit does: traversal grids (one row per
// direction, t from −T to +T) and sequential-edit grids. It sits apart from
// package report because it needs a generator, and the generator package
// itself draws its samples with report.
package editgrid

import (
	"fmt"

	"latentedit/edit"
	"latentedit/generator"
	"latentedit/internal/figure"
)

// Traversal writes a grid with one row per direction of e and cols columns
// for t from −maxT to +maxT (the middle column is the unedited image), all
// starting from latent z.
func Traversal(path string, m *generator.Model, e edit.Editor, z []float32, maxT float32, cols int) error {
	if cols < 2 {
		return fmt.Errorf("traversal %s: need at least 2 columns", path)
	}
	var rows [][]float32
	var steps []edit.Step
	for k := 0; k < e.K(); k++ {
		for c := 0; c < cols; c++ {
			rows = append(rows, z)
			steps = append(steps, edit.Step{K: k, T: -maxT + 2*maxT*float32(c)/float32(cols-1)})
		}
	}
	edited, err := e.EditBatch(rows, steps)
	if err != nil {
		return fmt.Errorf("traversal %s: %w", path, err)
	}
	var lat []float32
	for _, zz := range edited {
		lat = append(lat, zz...)
	}
	n := e.K() * cols
	pix, err := m.GenerateFloats(lat, n)
	if err != nil {
		return fmt.Errorf("traversal %s: %w", path, err)
	}
	h, w, c := m.ImageShape()
	imgs := generator.ToImages(pix, n, h, w, c)
	return figure.Grid(path, imgs, cols, 64*cols)
}

// Sequence writes a grid with one row per latent: the original, then the
// image after each step of the sequence (edits applied in order).
func Sequence(path string, m *generator.Model, e edit.Editor, zs [][]float32, steps []edit.Step) error {
	seqs := make([][]edit.Step, len(zs))
	for i := range seqs {
		seqs[i] = steps
	}
	paths, err := edit.Apply(e, zs, seqs)
	if err != nil {
		return fmt.Errorf("sequence %s: %w", path, err)
	}
	var lat []float32
	for i, z := range zs {
		seq := paths[i]
		lat = append(lat, z...)
		for _, s := range seq {
			lat = append(lat, s...)
		}
	}
	n := len(zs) * (len(steps) + 1)
	pix, err := m.GenerateFloats(lat, n)
	if err != nil {
		return fmt.Errorf("sequence %s: %w", path, err)
	}
	h, w, c := m.ImageShape()
	return figure.Grid(path, generator.ToImages(pix, n, h, w, c), len(steps)+1, 64*(len(steps)+1))
}
