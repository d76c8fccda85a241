package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"latentedit/generator"
	"latentedit/server"
	"latentedit/workspace"
)

// syncBuffer is a bytes.Buffer safe to read while the command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// `latentedit serve` binds loopback, answers the API and stops cleanly on
// SIGINT (Ctrl-C) with exit status 0.
func TestServeCommand(t *testing.T) {
	var out, errb syncBuffer
	code := make(chan int, 1)
	go func() { code <- run([]string{"serve", "--model", "faces-gan", "--addr", "127.0.0.1:0"}, &out, &errb) }()
	re := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)/`)
	var addr string
	for deadline := time.Now().Add(time.Minute); addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
		}
		select {
		case c := <-code:
			t.Fatalf("serve exited %d: %s", c, errb.String())
		default:
		}
	}
	if addr == "" {
		t.Fatalf("serve printed no address: %q %q", out.String(), errb.String())
	}
	res, err := http.Get("http://" + addr + "/api/info")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Model   string `json:"model"`
		Editors []struct{ Name string }
	}
	err = json.NewDecoder(res.Body).Decode(&info)
	res.Body.Close()
	if err != nil || info.Model != "faces-gan" || len(info.Editors) < 6 {
		t.Errorf("info %+v: %v", info, err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("serve exited %d after SIGINT: %s", c, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGINT")
	}
	for _, bad := range [][]string{{"serve", "--addr", "nowhere"}, {"serve", "--workers", "x"}} {
		var o, e bytes.Buffer
		if c := run(bad, &o, &e); c != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", bad, c, exitUsage, e.String())
		}
	}
}

// A recipe downloaded from the page replays through `latentedit edit
// --recipe` to the same pixels, byte for byte, as the page showed: for an
// edited seed and for a fusion.
func TestEditRecipeReplaysThePagePixels(t *testing.T) {
	dir := t.TempDir()
	ws, err := workspace.Open("faces-gan", "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(ws, server.Config{Model: "faces-gan"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ts := httptest.NewServer(s)
	defer ts.Close()
	a, b := generator.Latent(11, 64), generator.Latent(12, 64)
	call := func(path string, body any) (latent []float32, pic image.Image) {
		raw, _ := json.Marshal(body)
		res, err := http.Post(ts.URL+path, "application/json", bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out struct {
			Latent []float32 `json:"latent"`
			Image  string    `json:"image"`
		}
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 200 {
			t.Fatalf("%s: status %d, %v", path, res.StatusCode, err)
		}
		data, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(out.Image, "data:image/png;base64,"))
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return out.Latent, img
	}
	steps := []server.StepJSON{{Direction: "smile", T: 3.5}, {Direction: "hair_colour", T: -2.25}, {Direction: "3", T: 1}}
	_, edited := call("/api/edit", map[string]any{"editor": "interfacegan", "latent": a, "steps": steps})
	fusedZ, fused := call("/api/interpolate", map[string]any{"a": a, "b": b, "mix": 0.37, "mode": "v", "editor": "curvilinear"})
	for name, tc := range map[string]struct {
		recipe server.Recipe
		want   image.Image
	}{
		"edited seed": {server.Recipe{FormatVersion: 1, Model: "faces-gan", Origin: "seed 11", Latent: a, Editor: "interfacegan", Steps: steps}, edited},
		"fusion":      {server.Recipe{FormatVersion: 1, Model: "faces-gan", Origin: "fusion", Latent: fusedZ, Editor: "warped", Steps: []server.StepJSON{}}, fused},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		raw, _ := json.MarshalIndent(tc.recipe, "", " ")
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		outPNG := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".png")
		var o, e bytes.Buffer
		// No --model: the recipe names it.
		if c := run([]string{"edit", "--recipe", path, "--out", outPNG}, &o, &e); c != 0 {
			t.Fatalf("%s: edit --recipe exit %d: %s", name, c, e.String())
		}
		f, err := os.ReadFile(outPNG)
		if err != nil {
			t.Fatal(err)
		}
		got, err := png.Decode(bytes.NewReader(f))
		if err != nil {
			t.Fatal(err)
		}
		gr, wr := toNRGBA(got), toNRGBA(tc.want)
		if gr.Rect != wr.Rect || !bytes.Equal(gr.Pix, wr.Pix) {
			t.Errorf("%s: replayed pixels differ from the page's", name)
		}
	}
	// Bad recipes name the field; a recipe without a model needs --model.
	for _, bad := range []struct{ recipe, want string }{
		{`{"format_version":1,"model":"faces-gan","latent":[1,2],"steps":[]}`, "latent"},
		{`{"format_version":1,"model":"faces-gan","latent":` + jsonFloats(a) + `,"editor":"interfacegan","steps":[{"direction":"moustache","t":1}]}`, "steps[0].direction"},
		{`{"format_version":1,"model":"faces-gan","latent":` + jsonFloats(a) + `,"editor":"nope","steps":[{"direction":"0","t":1}]}`, "editor"},
		{`{"format_version":1,"latent":[]}`, "names no model"},
	} {
		path := filepath.Join(dir, "bad.json")
		os.WriteFile(path, []byte(bad.recipe), 0o644)
		var o, e bytes.Buffer
		if c := run([]string{"edit", "--recipe", path, "--out", filepath.Join(dir, "bad.png")}, &o, &e); c == 0 || !strings.Contains(e.String(), bad.want) {
			t.Errorf("recipe %.60s: exit %d, stderr %q lacks %q", bad.recipe, c, e.String(), bad.want)
		}
	}
}

func jsonFloats(z []float32) string {
	b, _ := json.Marshal(z)
	return string(b)
}

func toNRGBA(img image.Image) *image.NRGBA {
	out := image.NewNRGBA(img.Bounds())
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			out.Set(x, y, img.At(x, y))
		}
	}
	return out
}

// TestServeRefusesOpenBindWithoutADecision: beyond loopback, serve needs a
// token (file or generated) or an explicit --no-auth; contradictory or
// empty limits exit 2 too. All of these fail before the model is opened.
func TestServeRefusesOpenBindWithoutADecision(t *testing.T) {
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	good := filepath.Join(t.TempDir(), "token")
	os.WriteFile(good, []byte("0123456789abcdef0123\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--addr", "0.0.0.0:0"}, []string{"--token-file", "--new-token", "--no-auth"}},
		{[]string{"--addr", ":0"}, []string{"--token-file", "--new-token", "--no-auth"}},
		{[]string{"--addr", "192.168.10.10:0"}, []string{"--token-file", "--no-auth"}},
		{[]string{"--addr", "0.0.0.0:0", "--no-auth", "--token-file", good}, []string{"contradicts"}},
		{[]string{"--addr", "0.0.0.0:0", "--new-token", "--token-file", good}, []string{"choose one"}},
		{[]string{"--addr", "0.0.0.0:0", "--token-file", short}, []string{"16 characters"}},
		{[]string{"--rate", "0"}, []string{"--rate"}},
		{[]string{"--client-jobs", "0"}, []string{"--client-jobs"}},
		{[]string{"--tls-cert", good}, []string{"--tls-key"}},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"serve"}, tc.args...), &out, &errb)
		if code != exitUsage {
			t.Errorf("serve %v: code %d (%s), want %d", tc.args, code, errb.String(), exitUsage)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(errb.String(), w) {
				t.Errorf("serve %v: %q does not name %s", tc.args, errb.String(), w)
			}
		}
	}
	for host, want := range map[string]bool{"127.0.0.1": true, "localhost": true, "::1": true, "[::1]": true, "": false, "0.0.0.0": false, "example.org": false, "10.0.0.1": false} {
		if got := server.IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v", host, got)
		}
	}
	link := pageLink("0.0.0.0:8080", server.Config{Token: "0123456789abcdef0123", TLSCert: "c", TLSKey: "k"})
	if !strings.HasPrefix(link, "https://") || !strings.HasSuffix(link, ":8080/#token=0123456789abcdef0123") || strings.Contains(link, "0.0.0.0") {
		t.Errorf("link %q", link)
	}
}
