package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"latentedit/workspace"
)

// The faces GAN and its six shipped editors are loaded once for the whole
// package: loading and compiling them is most of a test's cost.
var (
	shared     *Server
	sharedWS   *workspace.Workspace
	sharedURL  string
	sharedOnce sync.Once
	sharedErr  error
)

// testInvertSteps keeps GAN inversions short in tests; the page's default
// is DefaultConfig's.
const testInvertSteps = 12

func sharedServer(t testing.TB) (*Server, string) {
	t.Helper()
	sharedOnce.Do(func() {
		sharedWS, sharedErr = workspace.Open("faces-gan", "")
		if sharedErr != nil {
			return
		}
		steps := testInvertSteps
		// The docs' upload screenshot is taken with the page's default
		// (LATENTEDIT_TEST_INVERT_STEPS=100): a short fit looks worse than users see.
		if v, err := strconv.Atoi(os.Getenv("LATENTEDIT_TEST_INVERT_STEPS")); err == nil && v > 0 {
			steps = v
		}
		// A 3-minute request timeout (serve's default is 60 s): CI runs
		// other packages' tests on the same 2 cores, and the load test's
		// 200 clients must queue, not be refused, even when renders are
		// ten times slower than on a quiet machine (under -race, 50 times
		// slower, 60 s was seen to run out).
		// No per-client limit (Rate -1): every test here comes from
		// 127.0.0.1, and the load test's 200 clients must all be served;
		// the limits have their own servers (guard_test.go).
		shared, sharedErr = New(sharedWS, Config{Model: "faces-gan", InvertSteps: steps, Timeout: 3 * time.Minute, Rate: -1})
		if sharedErr != nil {
			return
		}
		// The real http.Server of Serve, on loopback, living until the
		// process ends: every test shares it.
		addr := make(chan string, 1)
		go func() {
			if err := Serve(context.Background(), "127.0.0.1:0", shared, func(a string) { addr <- a }); err != nil {
				panic(err)
			}
		}()
		sharedURL = "http://" + <-addr
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared, sharedURL
}

// testToken is the access token of tokenServer.
const testToken = "test-token-0123456789abcdef"

var (
	tokenOnce sync.Once
	tokenURL  string
	tokenErr  error
)

// tokenServer is a second real server on loopback over the shared
// workspace that requires testToken on every API request, as `serve
// --token-file` does: the browser test drives the page through it.
func tokenServer(t testing.TB) string {
	t.Helper()
	sharedServer(t)
	tokenOnce.Do(func() {
		var s *Server
		s, tokenErr = New(sharedWS, Config{Model: "faces-gan", InvertSteps: testInvertSteps, Timeout: 3 * time.Minute, Rate: -1, Token: testToken})
		if tokenErr != nil {
			return
		}
		addr := make(chan string, 1)
		go func() {
			if err := Serve(context.Background(), "127.0.0.1:0", s, func(a string) { addr <- a }); err != nil {
				panic(err)
			}
		}()
		tokenURL = "http://" + <-addr
	})
	if tokenErr != nil {
		t.Fatal(tokenErr)
	}
	return tokenURL
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	os.Exit(code)
}

// post sends body (a value to marshal, or a string sent as is) as JSON and
// decodes the JSON answer into out (may be nil); it returns the status.
func post(t testing.TB, url string, body any, out any) int {
	t.Helper()
	var raw []byte
	if s, ok := body.(string); ok {
		raw = []byte(s)
	} else {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	res, err := http.Post(url, "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return decodeResponse(t, res, out)
}

func get(t testing.TB, url string, out any) int {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	return decodeResponse(t, res, out)
}

func decodeResponse(t testing.TB, res *http.Response, out any) int {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: Content-Type %q, want JSON; body %.200s", res.Request.URL, ct, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v in %.300s", res.Request.URL, err, b)
		}
	}
	return res.StatusCode
}

// decodePNG reads a PNG data URL.
func decodePNG(t testing.TB, url string) image.Image {
	t.Helper()
	data, ok := strings.CutPrefix(url, "data:image/png;base64,")
	if !ok {
		t.Fatalf("not a PNG data URL: %.40s", url)
	}
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// samePixels reports the first pixel where a and b differ, or "".
func samePixels(a, b image.Image) string {
	if a.Bounds() != b.Bounds() {
		return fmt.Sprintf("bounds %v vs %v", a.Bounds(), b.Bounds())
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				return fmt.Sprintf("pixel (%d, %d): %v vs %v", x, y, a.At(x, y), b.At(x, y))
			}
		}
	}
	return ""
}
