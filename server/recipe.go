package server

import (
	"encoding/json"
	"fmt"
	"image"

	"latentedit/edit"
	"latentedit/generator"
	"latentedit/workspace"
)

// RecipeVersion is the recipe layout this build reads and writes.
const RecipeVersion = 1

// Recipe is what the page downloads beside the picture: the starting latent
// and the edits, in order. `latentedit edit --recipe` replays it to the same
// pixels, because both go through Replay and Render.
//
// The latent is stored as numbers, not as a seed, so fused and uploaded
// characters replay too; float32 values survive JSON exactly (Go writes the
// shortest decimal that reads back to the same float32).
type Recipe struct {
	FormatVersion int        `json:"format_version"`
	Model         string     `json:"model"`            // the --model the page was served with
	Origin        string     `json:"origin,omitempty"` // for people: "seed 12", "fusion of seeds 3 and 7 …", "upload"
	Latent        []float32  `json:"latent"`
	Editor        string     `json:"editor,omitempty"` // required when there are steps
	Steps         []StepJSON `json:"steps"`
}

func decodeRecipe(body []byte, c *catalog) (Recipe, []edit.Step, *apiError) {
	var r Recipe
	if err := decodeJSON(body, &r); err != nil {
		return r, nil, err
	}
	if r.FormatVersion != RecipeVersion {
		return r, nil, badField("format_version", "%d, this build reads %d", r.FormatVersion, RecipeVersion)
	}
	if err := c.latent("latent", r.Latent); err != nil {
		return r, nil, err
	}
	if len(r.Steps) == 0 {
		return r, nil, nil
	}
	e, err := c.editor("editor", r.Editor)
	if err != nil {
		return r, nil, err
	}
	steps, err := resolveSteps("steps", e, r.Steps)
	return r, steps, err
}

// Replay decodes a recipe and returns the edited latent and its picture, for
// the model in ws (the recipe's own "model" field is only a note: the
// caller chose ws). Errors name the recipe field that is wrong.
func Replay(ws *workspace.Workspace, raw []byte) ([]float32, image.Image, error) {
	m := ws.Model // a recipe's latent lives in its editor's space (the model's, without one)
	c := &catalog{editors: map[string]edit.Editor{}}
	var probe struct {
		Editor string `json:"editor"`
	}
	// Load only the editor the recipe names; decodeRecipe then checks the
	// whole recipe strictly and reports malformed JSON itself.
	_ = json.Unmarshal(raw, &probe)
	if probe.Editor != "" {
		e, _, err := ws.LoadEditor(probe.Editor)
		if err != nil {
			return nil, nil, fmt.Errorf("recipe: field editor: %w", err)
		}
		c.editors[probe.Editor] = e
		if m, err = ws.ModelFor(e); err != nil {
			return nil, nil, fmt.Errorf("recipe: field editor: %w", err)
		}
	}
	c.latentDim = m.LatentDim()
	r, steps, apiErr := decodeRecipe(raw, c)
	if apiErr != nil {
		return nil, nil, fmt.Errorf("recipe: %w", apiErr)
	}
	z := r.Latent
	if len(steps) > 0 {
		zs, err := edit.ApplyOne(c.editors[r.Editor], z, steps)
		if err != nil {
			return nil, nil, fmt.Errorf("recipe: %w", err)
		}
		z = zs[len(zs)-1]
	}
	img, err := Render(m, z)
	return z, img, err
}

// Render is the picture of one latent. The server and the recipe replay
// both draw through it with a batch of one: the pure-Go backend's results
// differ in the last bits between batch sizes, and a replay must give the
// same pixels as the page showed.
func Render(m *generator.Model, z []float32) (image.Image, error) {
	pix, err := m.GenerateFloats(z, 1)
	if err != nil {
		return nil, err
	}
	h, w, c := m.ImageShape()
	return generator.ToImages(pix, 1, h, w, c)[0], nil
}
