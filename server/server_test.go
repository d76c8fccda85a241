package server

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"latentedit/edit"
	"latentedit/generator"
)

func TestInfoListsEditorsAndNames(t *testing.T) {
	_, url := sharedServer(t)
	var info infoResponse
	if c := get(t, url+"/api/info", &info); c != 200 {
		t.Fatalf("status %d", c)
	}
	if info.LatentDim != 64 || info.Width != 32 || info.Kind != "gan" || info.Model != "faces-gan" {
		t.Errorf("info %+v", info)
	}
	methods := map[string]bool{}
	for _, e := range info.Editors {
		methods[e.Method] = true
		if len(e.Names) != e.K || e.K < 1 {
			t.Errorf("editor %s: %d names for K=%d", e.Name, len(e.Names), e.K)
		}
		if e.Commutes != (e.Method == "curvilinear") {
			t.Errorf("editor %s (%s): commutes = %v", e.Name, e.Method, e.Commutes)
		}
	}
	for _, m := range []string{"linear", "warped", "curvilinear", "ganspace", "sefa", "interfacegan"} {
		if !methods[m] {
			t.Errorf("no %s editor in %v", m, info.Editors)
		}
	}
	if len(info.Skipped) > 0 {
		t.Errorf("skipped editors: %v", info.Skipped)
	}
	if info.Invert.Default != InvertOptimise {
		t.Errorf("a GAN inverts by %q", info.Invert.Default)
	}
}

func TestPageIsServed(t *testing.T) {
	_, url := sharedServer(t)
	for path, want := range map[string]string{"/": "character editor", "/app.js": "/api/edit", "/style.css": "pixelated"} {
		res, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(b.String(), want) {
			t.Errorf("%s: status %d, %q not in body", path, res.StatusCode, want)
		}
	}
}

func TestSampleIsSeeded(t *testing.T) {
	s, url := sharedServer(t)
	var res struct{ Characters []character }
	if c := post(t, url+"/api/sample", SampleRequest{Seed: 41, Count: 2}, &res); c != 200 {
		t.Fatalf("status %d", c)
	}
	if len(res.Characters) != 2 {
		t.Fatalf("%d characters", len(res.Characters))
	}
	for i, ch := range res.Characters {
		want := generator.Latent(41+int64(i), 64)
		if ch.Seed != 41+int64(i) || !slices.Equal(ch.Latent, want) {
			t.Errorf("character %d: seed %d, latent differs from generator.Latent", i, ch.Seed)
		}
		img, err := Render(s.m, want)
		if err != nil {
			t.Fatal(err)
		}
		if d := samePixels(decodePNG(t, ch.Image), img); d != "" {
			t.Errorf("character %d: picture differs from Render: %s", i, d)
		}
	}
	if res.Characters[0].Image == res.Characters[1].Image {
		t.Error("two seeds gave the same picture")
	}
}

func TestEditMatchesApplyAndReplay(t *testing.T) {
	s, url := sharedServer(t)
	z := generator.Latent(5, 64)
	for _, name := range []string{"linear", "warped", "curvilinear", "interfacegan"} {
		e := s.cat.editors[name]
		steps := []StepJSON{{Direction: e.Names()[1], T: 2.5}, {Direction: "0", T: -1.5}}
		var res latentResponse
		if c := post(t, url+"/api/edit", EditRequest{Editor: name, Latent: z, Steps: steps}, &res); c != 200 {
			t.Fatalf("%s: status %d", name, c)
		}
		want, err := edit.ApplyOne(e, z, []edit.Step{{K: 1, T: 2.5}, {K: 0, T: -1.5}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Latent, want[1]) {
			t.Errorf("%s: latent differs from edit.ApplyOne", name)
		}
		if slices.Equal(res.Latent, z) {
			t.Errorf("%s: edit did not move the latent", name)
		}
		// The recipe the page would download replays to the same pixels.
		raw, _ := json.Marshal(Recipe{FormatVersion: RecipeVersion, Model: "faces-gan", Latent: z, Editor: name, Steps: steps})
		zr, img, err := Replay(sharedWS, raw)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(zr, res.Latent) {
			t.Errorf("%s: replayed latent differs", name)
		}
		if d := samePixels(decodePNG(t, res.Image), img); d != "" {
			t.Errorf("%s: replayed picture differs: %s", name, d)
		}
	}
}

// The curvilinear editor's edits add in V: the page's "other order" toggle
// must show the same character; a linear editor's need not.
func TestOrderOfEditsThroughTheAPI(t *testing.T) {
	_, url := sharedServer(t)
	z := generator.Latent(9, 64)
	steps := []StepJSON{{Direction: "0", T: 3}, {Direction: "2", T: -2}, {Direction: "1", T: 1.5}}
	rev := []StepJSON{steps[2], steps[1], steps[0]}
	var a, b latentResponse
	post(t, url+"/api/edit", EditRequest{Editor: "curvilinear", Latent: z, Steps: steps}, &a)
	post(t, url+"/api/edit", EditRequest{Editor: "curvilinear", Latent: z, Steps: rev}, &b)
	if d := maxAbsDiff(a.Latent, b.Latent); d > 1e-4 {
		t.Errorf("curvilinear: orders differ by %g in latent space", d)
	}
	post(t, url+"/api/edit", EditRequest{Editor: "warped", Latent: z, Steps: steps}, &a)
	post(t, url+"/api/edit", EditRequest{Editor: "warped", Latent: z, Steps: rev}, &b)
	if d := maxAbsDiff(a.Latent, b.Latent); d < 1e-4 {
		t.Errorf("warped: orders agree to %g; its RBF fields should not commute", d)
	}
}

func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

func TestInterpolate(t *testing.T) {
	_, url := sharedServer(t)
	a, b := generator.Latent(1, 64), generator.Latent(2, 64)
	norm := func(z []float32) float64 {
		s := 0.0
		for _, v := range z {
			s += float64(v) * float64(v)
		}
		return math.Sqrt(s)
	}
	for _, tc := range []struct {
		mode, editor string
		tol          float64 // at the ends, the fusion is A or B to within tol
	}{{ModeLinear, "", 1e-6}, {ModeSpherical, "", 1e-5}, {ModeV, "curvilinear", 1e-3}} {
		var r0, r1, mid latentResponse
		for mix, out := range map[float32]*latentResponse{0: &r0, 1: &r1, 0.5: &mid} {
			req := InterpolateRequest{A: a, B: b, Mix: mix, Mode: tc.mode, Editor: tc.editor}
			if c := post(t, url+"/api/interpolate", req, out); c != 200 {
				t.Fatalf("%s mix %v: status %d", tc.mode, mix, c)
			}
		}
		if d := maxAbsDiff(r0.Latent, a); d > tc.tol {
			t.Errorf("%s: mix 0 is %g from A", tc.mode, d)
		}
		if d := maxAbsDiff(r1.Latent, b); d > tc.tol {
			t.Errorf("%s: mix 1 is %g from B", tc.mode, d)
		}
		if maxAbsDiff(mid.Latent, a) < 0.1 || maxAbsDiff(mid.Latent, b) < 0.1 {
			t.Errorf("%s: mix 0.5 is A or B", tc.mode)
		}
		// Spherical keeps the norm between the ends' norms; linear shrinks it.
		na, nb, nm := norm(a), norm(b), norm(mid.Latent)
		switch tc.mode {
		case ModeSpherical:
			if nm < min(na, nb)-1e-3 || nm > max(na, nb)+1e-3 {
				t.Errorf("spherical: |mid| %g outside [%g, %g]", nm, min(na, nb), max(na, nb))
			}
		case ModeLinear:
			if nm > 0.9*min(na, nb) {
				t.Errorf("linear: |mid| %g, want the shrink of a chord (|a| %g, |b| %g)", nm, na, nb)
			}
		}
	}
}

func TestInvertByOptimisationReportsProgress(t *testing.T) {
	s, url := sharedServer(t)
	// A picture the GAN can draw, so a good fit exists.
	img, err := Render(s.m, generator.Latent(77, 64))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := pngDataURL(img)
	var st invertStatus
	if c := post(t, url+"/api/invert", InvertRequest{Image: u}, &st); c != 200 {
		t.Fatalf("status %d: %+v", c, st)
	}
	if st.ID == "" || st.Steps != s.cfg.InvertSteps || st.Method != InvertOptimise || !strings.HasPrefix(st.Target, "data:image/png") {
		t.Fatalf("first status %+v", st)
	}
	var losses []float64
	seen := map[int]bool{}
	deadline := time.Now().Add(2 * time.Minute)
	for !st.Done && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if c := get(t, url+"/api/invert/"+st.ID, &st); c != 200 {
			t.Fatalf("poll: status %d", c)
		}
		if st.Step > 0 && !seen[st.Step] {
			seen[st.Step] = true
			losses = append(losses, st.Loss)
		}
	}
	if !st.Done || st.Error != "" {
		t.Fatalf("not done or failed: %+v", st)
	}
	if len(seen) < 3 {
		t.Errorf("saw progress at only %d steps", len(seen))
	}
	if losses[len(losses)-1] >= losses[0] {
		t.Errorf("loss did not fall: %v", losses)
	}
	if len(st.Latent) != 64 || st.Image == "" {
		t.Fatalf("result: %d latent values, image %q", len(st.Latent), st.Image[:min(20, len(st.Image))])
	}
	// The result is a latent the editors accept.
	var res latentResponse
	if c := post(t, url+"/api/edit", EditRequest{Editor: "linear", Latent: st.Latent, Steps: []StepJSON{{"0", 1}}}, &res); c != 200 {
		t.Errorf("editing the inverted latent: status %d", c)
	}
}

// The VAE's encoder inverts in one pass and agrees with Model.Encode.
func TestInvertWithVAEEncoder(t *testing.T) {
	s := vaeServer(t)
	ws := vaeWS
	img, err := Render(ws.Model, generator.Latent(3, ws.Model.LatentDim()))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := pngDataURL(img)
	req, aerr := decodeInvert([]byte(`{"image":"`+u+`"}`), true)
	if aerr != nil {
		t.Fatal(aerr)
	}
	st, aerr := s.startInvert(context.Background(), nil, []byte(`{"image":"`+u+`","method":"encoder"}`))
	if aerr != nil {
		t.Fatal(aerr)
	}
	j, _ := s.jobs.get(st.(invertStatus).ID)
	for !j.status().Done {
		time.Sleep(10 * time.Millisecond)
	}
	got := j.status()
	want, err := ws.Model.Encode([]image.Image{FitImage(req.img, 32, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Error != "" || !slices.Equal(got.Latent, want[0]) {
		t.Errorf("encoder inversion %q: latent differs from Model.Encode", got.Error)
	}
}

// Serve shuts down when its context ends and lets a request in flight finish.
func TestServeShutsDownGracefully(t *testing.T) {
	_, _ = sharedServer(t)
	// Its own Server: Serve's shutdown closes the Server it serves, and
	// the shared one must keep running inversions for other tests.
	s, err := New(sharedWS, Config{Model: "faces-gan"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", s, func(a string) { addrc <- a }) }()
	addr := <-addrc
	status := make(chan int, 1)
	go func() {
		// Not post(): its t.Fatal would end this goroutine without a
		// status and hang the test; -1 says the request failed.
		raw, _ := json.Marshal(EditRequest{Editor: "linear", Latent: generator.Latent(1, 64)})
		res, err := http.Post("http://"+addr+"/api/edit", "application/json", bytes.NewReader(raw))
		if err != nil {
			status <- -1
			return
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		status <- res.StatusCode
	}()
	// Cancel once the request holds a worker (or is already answered): a
	// fixed sleep raced the request's start on a loaded machine, and the
	// shutdown then refused it.
	for deadline := time.Now().Add(30 * time.Second); len(s.sem) == 0 && len(status) == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if c := <-status; c != 200 {
		t.Errorf("request in flight during shutdown: status %d", c)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := http.Get("http://" + addr + "/api/info"); err == nil {
		t.Error("still accepting after shutdown")
	}
}

// On loopback the server answers only requests addressed to a loopback
// name, so a rebinding web page cannot use it.
func TestLoopbackOnly(t *testing.T) {
	s, _ := sharedServer(t)
	h := loopbackOnly(s)
	for host, want := range map[string]int{"127.0.0.1:8080": 200, "localhost:8080": 200, "[::1]:8080": 200, "localhost": 200,
		"evil.example:8080": http.StatusMisdirectedRequest, "192.168.1.5:8080": http.StatusMisdirectedRequest, "": http.StatusMisdirectedRequest} {
		req := httptest.NewRequest("GET", "/api/info", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %q: status %d, want %d", host, rec.Code, want)
		}
	}
}

// When every core is busy for longer than the request may wait, the answer
// is 503 with a JSON error, not a hang.
func TestBusyServerAnswers503(t *testing.T) {
	_, _ = sharedServer(t)
	s, err := New(sharedWS, Config{Model: "faces-gan", Workers: 1, Timeout: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.sem <- struct{}{} // a long render holds the only core
	defer func() { <-s.sem }()
	rec := httptestRecorder(t, s, http.MethodPost, "/api/edit", `{"editor":"linear","latent":`+latentJSON(64)+`}`)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "busy") {
		t.Errorf("status %d, body %s", rec.Code, rec.Body)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{Workers: -1}, {Timeout: -time.Second}, {InvertSteps: MaxInvertSteps + 1}, {MaxJobs: -1}} {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
}
