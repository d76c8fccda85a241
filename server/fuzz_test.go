package server

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"latentedit/edit"
)

// The fuzz tests run the request decoders on arbitrary bodies against a
// catalog of stub editors: no model is needed, so each input costs
// microseconds. The property: a decoder never panics, and whatever it
// accepts is within the documented bounds.

const fuzzDim = 8

type stubEditor struct {
	method string
	names  []string
}

func (s stubEditor) Method() string  { return s.method }
func (s stubEditor) K() int          { return len(s.names) }
func (s stubEditor) LatentDim() int  { return fuzzDim }
func (s stubEditor) Names() []string { return s.names }
func (s stubEditor) Space() string   { return "z" }
func (s stubEditor) EditBatch(zs [][]float32, steps []edit.Step) ([][]float32, error) {
	return nil, fmt.Errorf("stub")
}

// stubCurv also has a V space, like edit.Curvilinear.
type stubCurv struct{ stubEditor }

func (stubCurv) ToV(z []float32) ([]float32, error)   { return z, nil }
func (stubCurv) FromV(v []float32) ([]float32, error) { return v, nil }

func fuzzCatalog() *catalog {
	return &catalog{latentDim: fuzzDim, editors: map[string]edit.Editor{
		"lin":  stubEditor{"linear", []string{"smile", "bangs", "dir 2"}},
		"curv": stubCurv{stubEditor{"curvilinear", []string{"yaw", "pitch"}}},
	}}
}

func zeros(n int) string { return latentJSON(n) }

func checkLatentOK(t *testing.T, z []float32) {
	t.Helper()
	if len(z) != fuzzDim {
		t.Fatalf("accepted a latent of %d values", len(z))
	}
	for _, v := range z {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || math.Abs(float64(v)) > MaxLatentAbs {
			t.Fatalf("accepted latent value %v", v)
		}
	}
}

func checkErr(t *testing.T, err *apiError) {
	t.Helper()
	if err.Status < 400 || err.Status > 499 || err.Msg == "" {
		t.Fatalf("error %+v is not a 4xx with a message", err)
	}
}

func FuzzDecodeSample(f *testing.F) {
	for _, s := range []string{`{"seed":1,"count":12}`, `{"seed":-5,"count":1}`, `{"count":64}`, `{"seed":1e300}`, `[]`, ``, `{"seed":1,"count":1}x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeSample(body)
		if err != nil {
			checkErr(t, err)
			return
		}
		if r.Count < 1 || r.Count > MaxCount || r.Seed < 0 || r.Seed+int64(r.Count) > MaxSeed {
			t.Fatalf("accepted %+v", r)
		}
	})
}

func FuzzDecodeRender(f *testing.F) {
	f.Add([]byte(`{"latents":[` + zeros(fuzzDim) + `]}`))
	f.Add([]byte(`{"latents":[[1e38,0,0,0,0,0,0,-1e38]]}`))
	f.Add([]byte(`{"latents":[[1,2]]}`))
	f.Add([]byte(`{"latents":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeRender(body, fuzzCatalog())
		if err != nil {
			checkErr(t, err)
			return
		}
		if len(r.Latents) < 1 || len(r.Latents) > MaxCount {
			t.Fatalf("accepted %d latents", len(r.Latents))
		}
		for _, z := range r.Latents {
			checkLatentOK(t, z)
		}
	})
}

func FuzzDecodeEdit(f *testing.F) {
	z := zeros(fuzzDim)
	for _, s := range []string{
		`{"editor":"lin","latent":` + z + `,"steps":[{"direction":"smile","t":2}]}`,
		`{"editor":"curv","latent":` + z + `,"steps":[{"direction":"1","t":-100}]}`,
		`{"editor":"lin","latent":` + z + `,"steps":[{"direction":"dir 2","t":100.5}]}`,
		`{"editor":"lin","latent":` + z + `,"steps":[{"direction":"03","t":1}]}`,
		`{"editor":"nope","latent":` + z + `}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeEdit(body, fuzzCatalog())
		if err != nil {
			checkErr(t, err)
			return
		}
		checkLatentOK(t, r.Latent)
		if r.ed == nil || len(r.steps) != len(r.Steps) || len(r.steps) > MaxSteps {
			t.Fatalf("accepted %+v", r)
		}
		for _, s := range r.steps {
			if s.K < 0 || s.K >= r.ed.K() || !(math.Abs(float64(s.T)) <= edit.MaxStep) {
				t.Fatalf("accepted step %+v", s)
			}
		}
	})
}

func FuzzDecodeInterpolate(f *testing.F) {
	z := zeros(fuzzDim)
	for _, s := range []string{
		`{"a":` + z + `,"b":` + z + `,"mix":0.5,"mode":"linear"}`,
		`{"a":` + z + `,"b":` + z + `,"mix":1,"mode":"spherical"}`,
		`{"a":` + z + `,"b":` + z + `,"mix":0,"mode":"v","editor":"curv"}`,
		`{"a":` + z + `,"b":` + z + `,"mix":0,"mode":"v","editor":"lin"}`,
		`{"a":` + z + `,"b":` + z + `,"mix":-0.0001,"mode":"linear"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeInterpolate(body, fuzzCatalog())
		if err != nil {
			checkErr(t, err)
			return
		}
		checkLatentOK(t, r.A)
		checkLatentOK(t, r.B)
		if !(r.Mix >= 0 && r.Mix <= 1) {
			t.Fatalf("accepted mix %v", r.Mix)
		}
		if (r.Mode == ModeV) != (r.curv != nil) || (r.Mode != ModeLinear && r.Mode != ModeSpherical && r.Mode != ModeV) {
			t.Fatalf("accepted mode %q with V space %v", r.Mode, r.curv)
		}
		// What the decoder accepts, the maths takes without NaN.
		for _, v := range append(lerp(r.A, r.B, r.Mix), slerp(r.A, r.B, r.Mix)...) {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("interpolation gave %v", v)
			}
		}
	})
}

func FuzzDecodeInvert(f *testing.F) {
	f.Add([]byte(`{"image":"`+pngBase64(4, 3)+`"}`), false)
	f.Add([]byte(`{"image":"data:image/png;base64,`+pngBase64(2, 2)+`","method":"encoder"}`), true)
	f.Add([]byte(`{"image":"data:image/jpeg;base64,/9j/","steps":5}`), false)
	f.Add([]byte(`{"image":"`+pngBase64(3000, 1)+`","method":"optimise"}`), false)
	f.Fuzz(func(t *testing.T, body []byte, hasEncoder bool) {
		r, err := decodeInvert(body, hasEncoder)
		if err != nil {
			checkErr(t, err)
			return
		}
		b := r.img.Bounds()
		if b.Dx() < 1 || b.Dy() < 1 || b.Dx() > MaxImageSide || b.Dy() > MaxImageSide {
			t.Fatalf("accepted a %v image", b)
		}
		if r.Steps < 0 || r.Steps > MaxInvertSteps || (r.Method == InvertEncoder && !hasEncoder) ||
			(r.Method != "" && r.Method != InvertEncoder && r.Method != InvertOptimise) {
			t.Fatalf("accepted %+v", r)
		}
		// A fitted image always has the model's size.
		if fit := FitImage(r.img, 4, 4); fit.Bounds().Dx() != 4 {
			t.Fatal("FitImage size")
		}
	})
}

func FuzzDecodeRecipe(f *testing.F) {
	z := zeros(fuzzDim)
	f.Add([]byte(`{"format_version":1,"model":"m","latent":` + z + `,"editor":"lin","steps":[{"direction":"bangs","t":1.5}]}`))
	f.Add([]byte(`{"format_version":1,"latent":` + z + `,"steps":[]}`))
	f.Add([]byte(`{"format_version":1,"latent":` + z + `,"steps":[{"direction":"yaw","t":1}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, steps, err := decodeRecipe(body, fuzzCatalog())
		if err != nil {
			checkErr(t, err)
			return
		}
		checkLatentOK(t, r.Latent)
		if r.FormatVersion != RecipeVersion || len(steps) != len(r.Steps) || len(steps) > MaxSteps {
			t.Fatalf("accepted %+v", r)
		}
		if len(steps) > 0 && fuzzCatalog().editors[r.Editor] == nil {
			t.Fatalf("accepted steps for editor %q", r.Editor)
		}
		if strings.TrimSpace(string(body)) == "" {
			t.Fatal("accepted an empty body")
		}
	})
}
