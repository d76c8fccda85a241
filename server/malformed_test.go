package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"latentedit/workspace"
)

var (
	vaeOnce sync.Once
	vaeWS   *workspace.Workspace
	vaeErr  error
)

func openVAE() (*workspace.Workspace, error) {
	vaeOnce.Do(func() { vaeWS, vaeErr = workspace.Open("faces-vae", "") })
	return vaeWS, vaeErr
}

// vaeServer is a Server of the faces VAE (which ships no editors), closed
// at the end of the test.
func vaeServer(t *testing.T) *Server {
	t.Helper()
	ws, err := openVAE()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ws, Config{Model: "faces-vae"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func httptestRecorder(t testing.TB, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// latentJSON is a JSON array of n zeros (optionally with one value replaced).
func latentJSON(n int, replace ...string) string {
	v := make([]string, n)
	for i := range v {
		v[i] = "0"
	}
	if len(replace) > 0 {
		v[n/2] = replace[0]
	}
	return "[" + strings.Join(v, ",") + "]"
}

func pngBase64(w, h int) string {
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewRGBA(image.Rect(0, 0, w, h)))
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// TestMalformedRequests sends one request of each class of mistake and
// checks the answer: the right 4xx, a JSON error, the field named.
func TestMalformedRequests(t *testing.T) {
	s, _ := sharedServer(t)
	z := latentJSON(64)
	steps := func(n int) string {
		p := make([]string, n)
		for i := range p {
			p[i] = `{"direction":"0","t":1}`
		}
		return "[" + strings.Join(p, ",") + "]"
	}
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		want                            string // in the error or field
	}{
		{"unknown endpoint", "POST", "/api/nothing", "", `{}`, 404, "no API endpoint"},
		{"wrong method", "GET", "/api/edit", "", ``, 405, "takes POST"},
		{"wrong method on GET endpoint", "POST", "/api/info", "", `{}`, 405, "takes GET"},
		{"not JSON content type", "POST", "/api/sample", "text/plain", `{"seed":1,"count":1}`, 415, "application/json"},
		{"missing content type", "POST", "/api/sample", "-", `{"seed":1,"count":1}`, 415, "application/json"},
		{"body too large", "POST", "/api/render", "", `{"latents":[` + strings.Repeat(z+",", MaxBodyBytes/len(z)) + z + `]}`, 413, "body over"},
		{"empty body", "POST", "/api/sample", "", ``, 400, "empty body"},
		{"invalid JSON", "POST", "/api/sample", "", `{"seed":1,`, 400, "invalid JSON"},
		{"syntax error", "POST", "/api/sample", "", `{"seed":1 "count":2}`, 400, "invalid JSON at byte"},
		{"trailing data", "POST", "/api/sample", "", `{"seed":1,"count":1} {}`, 400, "trailing data"},
		{"not an object", "POST", "/api/sample", "", `[1,2]`, 400, "want"},
		{"unknown field", "POST", "/api/sample", "", `{"seed":1,"count":1,"size":512}`, 400, "size"},
		{"wrong type", "POST", "/api/sample", "", `{"seed":"one","count":1}`, 400, "seed"},
		{"count zero", "POST", "/api/sample", "", `{"seed":1,"count":0}`, 400, "count"},
		{"count too big", "POST", "/api/sample", "", `{"seed":1,"count":65}`, 400, "count"},
		{"negative seed", "POST", "/api/sample", "", `{"seed":-1,"count":1}`, 400, "seed"},
		{"no latents", "POST", "/api/render", "", `{"latents":[]}`, 400, "latents"},
		{"short latent", "POST", "/api/render", "", `{"latents":[[1,2,3]]}`, 400, "latents[0]"},
		{"float32 overflow", "POST", "/api/render", "", `{"latents":[` + latentJSON(64, "1e39") + `]}`, 400, "latents"},
		{"latent out of range", "POST", "/api/render", "", `{"latents":[` + latentJSON(64, "1e5") + `]}`, 400, "latents[0][32]"},
		{"latent not a number", "POST", "/api/render", "", `{"latents":[` + latentJSON(64, `"NaN"`) + `]}`, 400, "latents"},
		{"missing editor", "POST", "/api/edit", "", `{"latent":` + z + `}`, 400, "editor"},
		{"unknown editor", "POST", "/api/edit", "", `{"editor":"stylegan","latent":` + z + `}`, 400, "unknown editor"},
		{"editor path", "POST", "/api/edit", "", `{"editor":"../../etc","latent":` + z + `}`, 400, "unknown editor"},
		{"edit latent length", "POST", "/api/edit", "", `{"editor":"linear","latent":[0]}`, 400, "latent"},
		{"unknown direction", "POST", "/api/edit", "", `{"editor":"linear","latent":` + z + `,"steps":[{"direction":"moustache","t":1}]}`, 400, "steps[0].direction"},
		{"direction index out of range", "POST", "/api/edit", "", `{"editor":"linear","latent":` + z + `,"steps":[{"direction":"99","t":1}]}`, 400, "steps[0].direction"},
		{"step too large", "POST", "/api/edit", "", `{"editor":"linear","latent":` + z + `,"steps":[{"direction":"0","t":1},{"direction":"1","t":101}]}`, 400, "steps[1].t"},
		{"too many steps", "POST", "/api/edit", "", `{"editor":"linear","latent":` + z + `,"steps":` + steps(MaxSteps+1) + `}`, 400, "steps"},
		{"mix out of range", "POST", "/api/interpolate", "", `{"a":` + z + `,"b":` + z + `,"mix":1.5,"mode":"linear"}`, 400, "mix"},
		{"bad mode", "POST", "/api/interpolate", "", `{"a":` + z + `,"b":` + z + `,"mix":0.5,"mode":"cubic"}`, 400, "mode"},
		{"V mode without curvilinear editor", "POST", "/api/interpolate", "", `{"a":` + z + `,"b":` + z + `,"mix":0.5,"mode":"v","editor":"linear"}`, 400, "curvilinear"},
		{"editor with linear mode", "POST", "/api/interpolate", "", `{"a":` + z + `,"b":` + z + `,"mix":0.5,"mode":"linear","editor":"linear"}`, 400, "editor"},
		{"missing b", "POST", "/api/interpolate", "", `{"a":` + z + `,"mix":0.5,"mode":"linear"}`, 400, "b"},
		{"no image", "POST", "/api/invert", "", `{}`, 400, "image"},
		{"image not base64", "POST", "/api/invert", "", `{"image":"%%%"}`, 400, "base64"},
		{"image not PNG", "POST", "/api/invert", "", `{"image":"` + base64.StdEncoding.EncodeToString([]byte("GIF89a hello")) + `"}`, 400, "not a PNG or JPEG"},
		{"data URL not base64", "POST", "/api/invert", "", `{"image":"data:image/png,abc"}`, 400, "base64"},
		{"image too large", "POST", "/api/invert", "", `{"image":"` + pngBase64(MaxImageSide+1, 1) + `"}`, 400, "per side"},
		{"upload too large", "POST", "/api/invert", "", `{"image":"` + strings.Repeat("A", MaxUploadBytes) + `"}`, 413, "body over"},
		{"encoder on a GAN", "POST", "/api/invert", "", `{"image":"` + pngBase64(8, 8) + `","method":"encoder"}`, 400, "no encoder"},
		{"unknown invert method", "POST", "/api/invert", "", `{"image":"` + pngBase64(8, 8) + `","method":"magic"}`, 400, "method"},
		{"too many invert steps", "POST", "/api/invert", "", `{"image":"` + pngBase64(8, 8) + `","steps":100000}`, 400, "steps"},
		{"unknown job", "GET", "/api/invert/feedface", "", ``, 404, "no inversion"},
		{"recipe version", "POST", "/api/recipe", "", `{"format_version":2,"latent":` + z + `}`, 400, "format_version"},
		{"recipe steps without editor", "POST", "/api/recipe", "", `{"format_version":1,"latent":` + z + `,"steps":[{"direction":"0","t":1}]}`, 400, "editor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
			switch c.ctype {
			case "":
				req.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				req.Header.Set("Content-Type", c.ctype)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			var e apiError
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("status %d, body not JSON: %v: %.200s", rec.Code, err, rec.Body)
			}
			if rec.Code != c.status {
				t.Errorf("status %d, want %d (%+v)", rec.Code, c.status, e)
			}
			if got := e.Field + " " + e.Msg; !strings.Contains(got, c.want) {
				t.Errorf("error %q does not mention %q", got, c.want)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// Uploads beyond MaxJobs running inversions are refused with 429.
func TestTooManyInversions(t *testing.T) {
	_, _ = sharedServer(t)
	s, err := New(sharedWS, Config{Model: "faces-gan", MaxJobs: 1, InvertSteps: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.sem = make(chan struct{}) // no core ever frees: the first job stays running
	body := fmt.Sprintf(`{"image":"%s"}`, pngBase64(8, 8))
	if rec := httptestRecorder(t, s, "POST", "/api/invert", body); rec.Code != 200 {
		t.Fatalf("first: %d %s", rec.Code, rec.Body)
	}
	if rec := httptestRecorder(t, s, "POST", "/api/invert", body); rec.Code != http.StatusTooManyRequests {
		t.Errorf("second: %d %s", rec.Code, rec.Body)
	}
}

// A bug that panics in a handler still answers JSON (500) and the server
// goes on serving.
func TestPanicBecomesJSON500(t *testing.T) {
	s, _ := sharedServer(t)
	h := s.api(http.MethodGet, 0, func(context.Context, *http.Request, []byte) (any, *apiError) { panic("boom") })
	rec := httptestRecorder(t, h, "GET", "/api/x", "")
	var e apiError
	if rec.Code != 500 || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Msg == "" {
		t.Errorf("status %d, body %s", rec.Code, rec.Body)
	}
}
