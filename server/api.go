package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // uploads may be JPEG
	_ "image/png"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"

	"latentedit/edit"
)

// Limits of one request. Each is far above what the page sends and low enough
// that no request can hold a core for long or fill memory.
const (
	MaxBodyBytes   = 1 << 20  // JSON requests
	MaxUploadBytes = 12 << 20 // an invert request: the image, base64 in JSON
	MaxImageSide   = 2048     // uploaded images, per side, checked before decoding (bounds decode memory)
	MaxCount       = 64       // characters per sample request, latents per render
	MaxSteps       = 64       // edits in one sequence
	MaxLatentAbs   = 1e4      // |value| of a latent coordinate: z ~ N(0, I), so this is only an overflow guard
	MaxSeed        = 1 << 53  // seeds round-trip through JavaScript numbers exactly below 2^53
	MaxInvertSteps = 2000     // optimisation steps of one inversion
)

// apiError is a request the server refuses: an HTTP status (always 4xx or
// 503) and a message that says which field is wrong and why.
type apiError struct {
	Status int    `json:"-"`
	Msg    string `json:"error"`
	Field  string `json:"field,omitempty"`

	retryAfter int // seconds, sent as Retry-After with a 429
}

func (e *apiError) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Msg
	}
	return e.Msg
}

func badField(field, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// catalog is what requests are checked against: the model's latent size and
// the loaded editors. Decoders take it rather than the Server so the fuzz
// tests can run them without a model.
type catalog struct {
	latentDim int
	editors   map[string]edit.Editor
}

func (c *catalog) editorNames() []string {
	names := make([]string, 0, len(c.editors))
	for n := range c.editors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (c *catalog) editor(field, name string) (edit.Editor, *apiError) {
	if name == "" {
		return nil, badField(field, "missing; one of %v", c.editorNames())
	}
	e, ok := c.editors[name]
	if !ok {
		return nil, badField(field, "unknown editor %q; one of %v", name, c.editorNames())
	}
	return e, nil
}

// latent checks one latent: the model's length, finite, within MaxLatentAbs.
func (c *catalog) latent(field string, z []float32) *apiError {
	if len(z) != c.latentDim {
		return badField(field, "has %d values, the model's latent has %d", len(z), c.latentDim)
	}
	for i, v := range z {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || math.Abs(float64(v)) > MaxLatentAbs {
			return badField(fmt.Sprintf("%s[%d]", field, i), "%v is not a finite number within ±%g", v, MaxLatentAbs)
		}
	}
	return nil
}

// decodeJSON decodes exactly one JSON object into v: unknown fields,
// trailing data and wrong types are errors that name the field.
func decodeJSON(body []byte, v any) *apiError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return badField("", "empty body; send a JSON object")
		case errors.As(err, &syn):
			return badField("", "invalid JSON at byte %d: %v", syn.Offset, err)
		case errors.As(err, &typ):
			return badField(typ.Field, "want %v, got JSON %s", typ.Type, typ.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return badField(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "unknown field")
		}
		return badField("", "invalid JSON: %v", err)
	}
	if dec.More() {
		return badField("", "trailing data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return badField("", "trailing data after the JSON object")
	}
	return nil
}

// SampleRequest asks for Count characters from seeds Seed, Seed+1, ….
type SampleRequest struct {
	Seed  int64 `json:"seed"`
	Count int   `json:"count"`
}

func decodeSample(body []byte) (SampleRequest, *apiError) {
	var r SampleRequest
	if err := decodeJSON(body, &r); err != nil {
		return r, err
	}
	if r.Count < 1 || r.Count > MaxCount {
		return r, badField("count", "%d, want 1 … %d", r.Count, MaxCount)
	}
	if r.Seed < 0 || r.Seed > MaxSeed-MaxCount {
		return r, badField("seed", "%d, want 0 … %d", r.Seed, int64(MaxSeed-MaxCount))
	}
	return r, nil
}

// RenderRequest asks for the images of latents.
type RenderRequest struct {
	Latents [][]float32 `json:"latents"`
}

func decodeRender(body []byte, c *catalog) (RenderRequest, *apiError) {
	var r RenderRequest
	if err := decodeJSON(body, &r); err != nil {
		return r, err
	}
	if len(r.Latents) < 1 || len(r.Latents) > MaxCount {
		return r, badField("latents", "%d latents, want 1 … %d", len(r.Latents), MaxCount)
	}
	for i, z := range r.Latents {
		if err := c.latent(fmt.Sprintf("latents[%d]", i), z); err != nil {
			return r, err
		}
	}
	return r, nil
}

// StepJSON is one edit: a direction of the editor, by name ("smile") or
// index ("3"), and a signed amount.
type StepJSON struct {
	Direction string  `json:"direction"`
	T         float32 `json:"t"`
}

// EditRequest applies Steps, in order, to Latent with Editor.
type EditRequest struct {
	Editor string     `json:"editor"`
	Latent []float32  `json:"latent"`
	Steps  []StepJSON `json:"steps"`

	steps []edit.Step // resolved directions
	ed    edit.Editor
}

// steps resolves and bounds a sequence of edits for editor e.
func resolveSteps(field string, e edit.Editor, in []StepJSON) ([]edit.Step, *apiError) {
	if len(in) > MaxSteps {
		return nil, badField(field, "%d edits, at most %d", len(in), MaxSteps)
	}
	out := make([]edit.Step, len(in))
	for i, s := range in {
		f := fmt.Sprintf("%s[%d]", field, i)
		k, err := edit.Direction(e, s.Direction)
		if err != nil {
			return nil, badField(f+".direction", "%v", err)
		}
		if math.IsNaN(float64(s.T)) || math.Abs(float64(s.T)) > edit.MaxStep {
			return nil, badField(f+".t", "%v, want a number in [-%d, %d]", s.T, edit.MaxStep, edit.MaxStep)
		}
		out[i] = edit.Step{K: k, T: s.T}
	}
	return out, nil
}

func decodeEdit(body []byte, c *catalog) (EditRequest, *apiError) {
	var r EditRequest
	if err := decodeJSON(body, &r); err != nil {
		return r, err
	}
	e, err := c.editor("editor", r.Editor)
	if err != nil {
		return r, err
	}
	if err := c.latent("latent", r.Latent); err != nil {
		return r, err
	}
	r.ed = e
	r.steps, err = resolveSteps("steps", e, r.Steps)
	return r, err
}

// Interpolation modes.
const (
	ModeLinear    = "linear"    // (1-mix)·a + mix·b in z
	ModeSpherical = "spherical" // slerp in z: keeps the norm typical of N(0, I) samples
	ModeV         = "v"         // linear in V of a curvilinear editor, mapped back with f⁻¹
)

// InterpolateRequest fuses two characters: Mix 0 is A, 1 is B.
type InterpolateRequest struct {
	A      []float32 `json:"a"`
	B      []float32 `json:"b"`
	Mix    float32   `json:"mix"`
	Mode   string    `json:"mode"`
	Editor string    `json:"editor,omitempty"` // mode "v": a curvilinear editor

	curv vSpace
}

// vSpace is the part of edit.Curvilinear fusion in V needs.
type vSpace interface {
	ToV(z []float32) ([]float32, error)
	FromV(v []float32) ([]float32, error)
}

func decodeInterpolate(body []byte, c *catalog) (InterpolateRequest, *apiError) {
	var r InterpolateRequest
	if err := decodeJSON(body, &r); err != nil {
		return r, err
	}
	if err := c.latent("a", r.A); err != nil {
		return r, err
	}
	if err := c.latent("b", r.B); err != nil {
		return r, err
	}
	if !(r.Mix >= 0 && r.Mix <= 1) {
		return r, badField("mix", "%v, want a number in [0, 1]", r.Mix)
	}
	switch r.Mode {
	case ModeLinear, ModeSpherical:
		if r.Editor != "" {
			return r, badField("editor", "only mode %q uses an editor", ModeV)
		}
	case ModeV:
		e, err := c.editor("editor", r.Editor)
		if err != nil {
			return r, err
		}
		v, ok := e.(vSpace)
		if !ok {
			return r, badField("editor", "%q is a %s editor; mode %q needs a curvilinear one", r.Editor, e.Method(), ModeV)
		}
		r.curv = v
	default:
		return r, badField("mode", "%q, want %q, %q or %q", r.Mode, ModeLinear, ModeSpherical, ModeV)
	}
	return r, nil
}

// Inversion methods.
const (
	InvertEncoder  = "encoder"  // the VAE's encoder: one pass
	InvertOptimise = "optimise" // gradient descent on z through G
)

// InvertRequest finds the latent of an uploaded picture.
type InvertRequest struct {
	// Image is a PNG or JPEG, base64, optionally as a data URL
	// ("data:image/png;base64,…").
	Image string `json:"image"`
	// Method is "encoder" (VAE only), "optimise", or "" for the model's
	// default (encoder for a VAE, optimise for a GAN).
	Method string `json:"method,omitempty"`
	// Steps of optimisation; 0 means the server's default.
	Steps int `json:"steps,omitempty"`

	img image.Image
}

func decodeInvert(body []byte, hasEncoder bool) (InvertRequest, *apiError) {
	var r InvertRequest
	if err := decodeJSON(body, &r); err != nil {
		return r, err
	}
	switch r.Method {
	case "":
	case InvertEncoder:
		if !hasEncoder {
			return r, badField("method", "this model is a GAN with no encoder (train one: latentedit invert --train-encoder); use %q", InvertOptimise)
		}
	case InvertOptimise:
	default:
		return r, badField("method", "%q, want %q or %q", r.Method, InvertEncoder, InvertOptimise)
	}
	if r.Steps < 0 || r.Steps > MaxInvertSteps {
		return r, badField("steps", "%d, want 0 (default) … %d", r.Steps, MaxInvertSteps)
	}
	img, err := decodeImage(r.Image)
	if err != nil {
		return r, err
	}
	r.img = img
	return r, nil
}

// decodeImage reads a base64 PNG/JPEG (or data URL of one), refusing images
// larger than MaxImageSide before their pixels are decoded.
func decodeImage(s string) (image.Image, *apiError) {
	if s == "" {
		return nil, badField("image", "missing; send a PNG or JPEG as base64 or a data URL")
	}
	if strings.HasPrefix(s, "data:") {
		meta, data, ok := strings.Cut(s, ",")
		if !ok || !strings.HasSuffix(meta, ";base64") {
			return nil, badField("image", "a data URL must be base64: data:image/png;base64,…")
		}
		s = data
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, badField("image", "not base64: %v", err)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil {
		return nil, badField("image", "not a PNG or JPEG: %v", err)
	}
	if format != "png" && format != "jpeg" {
		return nil, badField("image", "format %s, want PNG or JPEG", format)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > MaxImageSide || cfg.Height > MaxImageSide {
		return nil, badField("image", "%d×%d pixels, want 1 … %d per side", cfg.Width, cfg.Height, MaxImageSide)
	}
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, badField("image", "cannot decode %s: %v", format, err)
	}
	return img, nil
}
