// Package server is latentedit's character editor: a JSON API over one
// generator and its editors (sample, render, edit, interpolate, invert) and
// the page that uses it, embedded with go:embed and written in plain
// JavaScript so there is no build step.
//
// Every request is checked before any model work: a bad one gets a 4xx and a
// JSON error naming the field, never a 500. Model work is bounded by a
// semaphore sized to the cores and by a per-request timeout, so a crowd of
// clients queues instead of oversubscribing the CPU.
//
// Only cmd/latentedit imports this package. It never trains or writes
// editors: it serves what workspace resolves.
package server

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"io/fs"
	"log"
	"math"
	"mime"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"latentedit/edit"
	"latentedit/generator"
	"latentedit/invert"
	"latentedit/workspace"
)

//go:embed static
var static embed.FS

// Config sets the server's bounds. The zero value is usable: zero fields take
// the defaults of DefaultConfig.
type Config struct {
	Model       string        // the --model argument, written into recipes
	Space       string        // the latent space served: z (default), w or w+; editors of other spaces are skipped
	Workers     int           // model evaluations at once; default runtime.NumCPU()
	Timeout     time.Duration // per request, waiting for a core included; default 60 s
	InvertSteps int           // default optimisation steps of a GAN inversion; default 100
	MaxJobs     int           // inversions running at once; default 4
	Log         io.Writer     // request failures (5xx) are logged here; default discard

	// Token, when set, is required on every /api/ request as
	// "Authorization: Bearer TOKEN" (the page reads it from its link).
	Token string
	// Rate is each client's token bucket: pictures, edits and inversion
	// starts a second, with bursts of Burst; default 20 and 64 (one
	// gallery of MaxCount at once). A negative Rate means no limit.
	Rate  float64
	Burst int
	// ClientJobs bounds the inversions one client runs at once; default 1.
	ClientJobs int
	// AbandonAfter cancels an inversion nobody has polled for this long (the
	// client closed the page); default 30 s.
	AbandonAfter time.Duration
	// TLSCert and TLSKey, both or neither, are PEM files: Serve then speaks
	// HTTPS only (TLS 1.2 or later).
	TLSCert, TLSKey string
}

// DefaultConfig is the configuration `latentedit serve` uses.
func DefaultConfig() Config {
	return Config{Workers: runtime.NumCPU(), Timeout: 60 * time.Second, InvertSteps: 100, MaxJobs: 4, Log: io.Discard,
		Rate: 20, Burst: 64, ClientJobs: 1, AbandonAfter: 30 * time.Second}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Workers, c.Timeout = cmp.Or(c.Workers, d.Workers), cmp.Or(c.Timeout, d.Timeout)
	c.InvertSteps, c.MaxJobs = cmp.Or(c.InvertSteps, d.InvertSteps), cmp.Or(c.MaxJobs, d.MaxJobs)
	c.Rate, c.Burst = cmp.Or(c.Rate, d.Rate), cmp.Or(c.Burst, d.Burst)
	c.ClientJobs, c.AbandonAfter = cmp.Or(c.ClientJobs, d.ClientJobs), cmp.Or(c.AbandonAfter, d.AbandonAfter)
	if c.Log == nil {
		c.Log = d.Log
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Workers < 0 || c.Workers > 1024:
		return fmt.Errorf("server: workers %d, want 0 (cores) … 1024", c.Workers)
	case c.Timeout < 0:
		return fmt.Errorf("server: timeout %v is negative", c.Timeout)
	case c.InvertSteps < 0 || c.InvertSteps > MaxInvertSteps:
		return fmt.Errorf("server: invert steps %d, want 0 (default) … %d", c.InvertSteps, MaxInvertSteps)
	case c.MaxJobs < 0:
		return fmt.Errorf("server: max jobs %d is negative", c.MaxJobs)
	case math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("server: rate %v is not a number", c.Rate)
	case c.Burst < 0 || c.ClientJobs < 0 || c.AbandonAfter < 0:
		return fmt.Errorf("server: burst %d, client jobs %d and abandon-after %v must not be negative", c.Burst, c.ClientJobs, c.AbandonAfter)
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return fmt.Errorf("server: TLS needs both a certificate and a key file")
	case c.Token != "" && (len(c.Token) < 16 || strings.ContainsAny(c.Token, " \t\r\n")):
		return fmt.Errorf("server: the access token must be at least 16 characters without spaces")
	}
	return nil
}

// Server serves one model. Create it with New; it is an http.Handler.
type Server struct {
	cfg     Config
	m       *generator.Model
	cat     *catalog
	info    infoResponse
	sem     chan struct{}
	renders latencies
	jobs    jobs
	inv     *invert.Inverter
	limits  *clientLimits
	mux     *http.ServeMux
	handler http.Handler    // mux behind guard
	base    context.Context // parent of inversion jobs; cancelled by Close
	stop    context.CancelFunc
	log     *log.Logger
}

// New loads every editor workspace ws lists and builds the server. An editor
// that fails to load is left out and named in /api/info's "skipped", so one
// broken folder does not take the editor down.
func New(ws *workspace.Workspace, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m, err := ws.Model.InSpace(cfg.Space)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{cfg: cfg, m: m, sem: make(chan struct{}, cfg.Workers), log: log.New(cfg.Log, "serve: ", log.LstdFlags)}
	s.jobs = jobs{byID: map[string]*invertJob{}, max: cfg.MaxJobs}
	s.limits = newClientLimits(cfg.Rate, cfg.Burst, cfg.ClientJobs)
	s.base, s.stop = context.WithCancel(context.Background())
	s.cat = &catalog{latentDim: m.LatentDim(), editors: map[string]edit.Editor{}}
	h, w, c := m.ImageShape()
	s.info = infoResponse{Model: cfg.Model, Kind: m.Info.Kind, Dataset: m.Info.Dataset, LatentDim: m.LatentDim(), Space: m.Space(),
		Height: h, Width: w, Channels: c, MaxStep: edit.MaxStep, MaxSteps: MaxSteps, MaxCount: MaxCount,
		Invert: invertInfo{Methods: []string{InvertOptimise}, Default: InvertOptimise, Steps: cfg.InvertSteps}}
	// Uploads start from an encoder's guess: a VAE's own, or one trained
	// for the GAN in the server's space (latentedit invert --train-encoder);
	// without one, from seeded latents. A broken encoder is refused, not
	// silently skipped.
	var enc *invert.Encoder
	if dir, ok := invert.LocateEncoder(m.Space(), ws.Work, ws.Shipped); ok && m.Info.Kind == "gan" {
		if enc, err = invert.LoadEncoder(dir, m); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	if s.inv, err = invert.New(m, enc); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.info.Invert.Start = s.inv.Guesser()
	switch {
	case m.Info.Kind == "vae":
		s.info.Invert = invertInfo{Methods: []string{InvertEncoder, InvertOptimise}, Default: InvertEncoder, Steps: cfg.InvertSteps, Start: s.inv.Guesser()}
	case enc != nil:
		// A GAN's encoder is a first guess: refined by default.
		s.info.Invert.Methods = []string{InvertEncoder, InvertOptimise}
	}
	s.info.Editors = []editorInfo{}
	for _, name := range ws.Editors() {
		e, _, err := ws.LoadEditor(name)
		if err != nil {
			s.info.Skipped = append(s.info.Skipped, err.Error())
			continue
		}
		if e.Space() != m.Space() {
			s.info.Skipped = append(s.info.Skipped, fmt.Sprintf("editor %s moves latents in %s; this server edits in %s (serve --space %s)", name, e.Space(), m.Space(), e.Space()))
			continue
		}
		s.cat.editors[name] = e
		_, isV := e.(vSpace)
		s.info.Editors = append(s.info.Editors, editorInfo{Name: name, Method: e.Method(), K: e.K(), Names: e.Names(), Commutes: isV})
	}
	s.routes()
	return s, nil
}

// Close cancels running inversions. The server answers requests after
// Close, but new inversions stop at their first step.
func (s *Server) Close() {
	s.stop()
	s.jobs.cancelAll()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	page, _ := fs.Sub(static, "static")
	s.mux.Handle("/", http.FileServerFS(page))
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Msg: fmt.Sprintf("no API endpoint %s; see docs/api.md", r.URL.Path)})
	})
	s.mux.Handle("/api/info", s.api(http.MethodGet, 0, func(context.Context, *http.Request, []byte) (any, *apiError) { return s.info, nil }))
	s.mux.Handle("/api/stats", s.api(http.MethodGet, 0, func(context.Context, *http.Request, []byte) (any, *apiError) { return s.renders.summary(), nil }))
	s.mux.Handle("/api/sample", s.api(http.MethodPost, MaxBodyBytes, s.sample))
	s.mux.Handle("/api/render", s.api(http.MethodPost, MaxBodyBytes, s.render))
	s.mux.Handle("/api/edit", s.api(http.MethodPost, MaxBodyBytes, s.edit))
	s.mux.Handle("/api/interpolate", s.api(http.MethodPost, MaxBodyBytes, s.interpolate))
	s.mux.Handle("/api/recipe", s.api(http.MethodPost, MaxBodyBytes, s.recipe))
	s.mux.Handle("/api/invert", s.api(http.MethodPost, MaxUploadBytes, s.startInvert))
	s.mux.Handle("/api/invert/{id}", s.api(http.MethodGet, 0, s.pollInvert))
	s.handler = s.guard(s.mux)
}

type handler func(ctx context.Context, r *http.Request, body []byte) (any, *apiError)

// api wraps a handler with the checks every endpoint shares: method, JSON
// content type, body size, timeout, and JSON errors.
func (s *Server) api(method string, limit int64, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A panic here is a bug of ours; the client still gets JSON, and
		// the server keeps serving.
		defer func() {
			if p := recover(); p != nil {
				s.log.Printf("%s %s: panic: %v", r.Method, r.URL.Path, p)
				writeError(w, &apiError{Status: http.StatusInternalServerError, Msg: "internal error (logged by the server)"})
			}
		}()
		if r.Method != method {
			w.Header().Set("Allow", method)
			writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Msg: fmt.Sprintf("method %s; %s takes %s", r.Method, r.URL.Path, method)})
			return
		}
		var body []byte
		if method == http.MethodPost {
			// Requiring JSON also keeps other web sites' plain form posts
			// from making the server work: they cannot set this type
			// without a CORS preflight, which the server never grants.
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				writeError(w, &apiError{Status: http.StatusUnsupportedMediaType, Msg: fmt.Sprintf("Content-Type %q; send application/json", r.Header.Get("Content-Type"))})
				return
			}
			var err error
			body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
			if err != nil {
				var tooBig *http.MaxBytesError
				if errors.As(err, &tooBig) {
					writeError(w, &apiError{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("body over %d bytes", limit)})
				} else {
					writeError(w, badField("", "reading the body: %v", err))
				}
				return
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
		defer cancel()
		res, aerr := h(ctx, r, body)
		if aerr != nil {
			if aerr.Status >= 500 {
				s.log.Printf("%s %s: %v", r.Method, r.URL.Path, aerr)
			}
			writeError(w, aerr)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	writeJSON(w, e.Status, e)
}

// work runs fn holding one of the Workers slots. Waiting ends with 503 when
// the request's time runs out first; an error of fn is a 500: every input
// was checked before, so it is the server's fault.
func (s *Server) work(ctx context.Context, fn func() error) *apiError {
	start := time.Now()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return &apiError{Status: http.StatusServiceUnavailable, Msg: fmt.Sprintf("server busy: no free core within %v; retry", time.Since(start).Round(time.Millisecond))}
	}
	defer func() { <-s.sem }()
	if err := fn(); err != nil {
		return &apiError{Status: http.StatusInternalServerError, Msg: err.Error()}
	}
	return nil
}

// picture renders z (holding a slot) and returns it as a PNG data URL.
func (s *Server) picture(ctx context.Context, z []float32) (string, *apiError) {
	var url string
	aerr := s.work(ctx, func() error {
		t0 := time.Now()
		img, err := Render(s.m, z)
		if err != nil {
			return err
		}
		s.renders.add(time.Since(t0))
		url, err = pngDataURL(img)
		return err
	})
	return url, aerr
}

func pngDataURL(img image.Image) (string, error) {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return "", err
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes()), nil
}

type editorInfo struct {
	Name     string   `json:"name"`
	Method   string   `json:"method"`
	K        int      `json:"k"`
	Names    []string `json:"names"`
	Commutes bool     `json:"commutes"` // curvilinear: edits add in V, order does not matter; fusion in V available
}

type invertInfo struct {
	Methods []string `json:"methods"`
	Default string   `json:"default"`
	Steps   int      `json:"steps"`
	// Start is where an optimisation starts: "encoder" (trained for this
	// GAN), "vae-encoder" or "seeds".
	Start string `json:"start"`
}

type infoResponse struct {
	Model     string       `json:"model"`
	Kind      string       `json:"kind"`
	Dataset   string       `json:"dataset"`
	LatentDim int          `json:"latent_dim"`
	Space     string       `json:"space"` // z, w or w+: what latent_dim counts and every latent is
	Height    int          `json:"height"`
	Width     int          `json:"width"`
	Channels  int          `json:"channels"`
	Editors   []editorInfo `json:"editors"`
	Skipped   []string     `json:"skipped,omitempty"`
	MaxStep   int          `json:"max_step"`
	MaxSteps  int          `json:"max_steps"`
	MaxCount  int          `json:"max_count"`
	Invert    invertInfo   `json:"invert"`
}

type character struct {
	Seed   int64     `json:"seed"`
	Latent []float32 `json:"latent"`
	Image  string    `json:"image"`
}

func (s *Server) sample(ctx context.Context, r *http.Request, body []byte) (any, *apiError) {
	req, aerr := decodeSample(body)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := s.limits.admit(r, req.Count); aerr != nil {
		return nil, aerr
	}
	out := make([]character, req.Count)
	for i := range out {
		seed := req.Seed + int64(i)
		z := s.m.Latent(seed)
		// One slot per picture, not per request: a gallery must not hold a
		// core while slider edits wait.
		img, aerr := s.picture(ctx, z)
		if aerr != nil {
			return nil, aerr
		}
		out[i] = character{Seed: seed, Latent: z, Image: img}
	}
	return map[string]any{"characters": out}, nil
}

func (s *Server) render(ctx context.Context, r *http.Request, body []byte) (any, *apiError) {
	req, aerr := decodeRender(body, s.cat)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := s.limits.admit(r, len(req.Latents)); aerr != nil {
		return nil, aerr
	}
	imgs := make([]string, len(req.Latents))
	for i, z := range req.Latents {
		if imgs[i], aerr = s.picture(ctx, z); aerr != nil {
			return nil, aerr
		}
	}
	return map[string]any{"images": imgs}, nil
}

type latentResponse struct {
	Latent []float32 `json:"latent"`
	Image  string    `json:"image"`
}

func (s *Server) edit(ctx context.Context, r *http.Request, body []byte) (any, *apiError) {
	req, aerr := decodeEdit(body, s.cat)
	if aerr == nil {
		aerr = s.limits.admit(r, 1)
	}
	if aerr != nil {
		return nil, aerr
	}
	return s.applyAndDraw(ctx, req.ed, req.Latent, req.steps)
}

// applyAndDraw applies steps to z with e (none: z itself) and draws the
// result; edit and recipe requests end here, so they give the same pixels.
func (s *Server) applyAndDraw(ctx context.Context, e edit.Editor, z []float32, steps []edit.Step) (any, *apiError) {
	if len(steps) > 0 {
		aerr := s.work(ctx, func() error {
			zs, err := edit.ApplyOne(e, z, steps)
			if err == nil {
				z = zs[len(zs)-1]
			}
			return err
		})
		if aerr != nil {
			return nil, aerr
		}
	}
	return s.drawn(ctx, z)
}

// drawn is the answer of edit, recipe and interpolate: z and its picture.
func (s *Server) drawn(ctx context.Context, z []float32) (any, *apiError) {
	img, aerr := s.picture(ctx, z)
	if aerr != nil {
		return nil, aerr
	}
	return latentResponse{Latent: z, Image: img}, nil
}

func (s *Server) recipe(ctx context.Context, hr *http.Request, body []byte) (any, *apiError) {
	r, steps, aerr := decodeRecipe(body, s.cat)
	if aerr == nil {
		aerr = s.limits.admit(hr, 1)
	}
	if aerr != nil {
		return nil, aerr
	}
	return s.applyAndDraw(ctx, s.cat.editors[r.Editor], r.Latent, steps)
}

func (s *Server) interpolate(ctx context.Context, r *http.Request, body []byte) (any, *apiError) {
	req, aerr := decodeInterpolate(body, s.cat)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := s.limits.admit(r, 1); aerr != nil {
		return nil, aerr
	}
	var z []float32
	switch req.Mode {
	case ModeLinear:
		z = lerp(req.A, req.B, req.Mix)
	case ModeSpherical:
		z = slerp(req.A, req.B, req.Mix)
	case ModeV:
		aerr = s.work(ctx, func() error {
			va, err := req.curv.ToV(req.A)
			if err != nil {
				return err
			}
			vb, err := req.curv.ToV(req.B)
			if err != nil {
				return err
			}
			z, err = req.curv.FromV(lerp(va, vb, req.Mix))
			return err
		})
		if aerr != nil {
			return nil, aerr
		}
	}
	return s.drawn(ctx, z)
}

func lerp(a, b []float32, t float32) []float32 {
	out := make([]float32, len(a))
	for i := range a {
		out[i] = (1-t)*a[i] + t*b[i]
	}
	return out
}

// slerp interpolates along the great circle between a and b, scaling the
// norm linearly between theirs: a straight line between two N(0, I) samples
// passes through short latents the generator rarely saw, which look washed out.
func slerp(a, b []float32, t float32) []float32 {
	var na, nb, dot float64
	for i := range a {
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
		dot += float64(a[i]) * float64(b[i])
	}
	na, nb = math.Sqrt(na), math.Sqrt(nb)
	if na == 0 || nb == 0 {
		return lerp(a, b, t)
	}
	cos := max(-1, min(1, dot/(na*nb)))
	omega := math.Acos(cos)
	if math.Sin(omega) < 1e-6 { // (anti)parallel: the great circle is not unique; the line is as good
		return lerp(a, b, t)
	}
	tt := float64(t)
	wa := math.Sin((1-tt)*omega) / math.Sin(omega) / na
	wb := math.Sin(tt*omega) / math.Sin(omega) / nb
	norm := (1-tt)*na + tt*nb
	out := make([]float32, len(a))
	for i := range a {
		out[i] = float32(norm * (wa*float64(a[i]) + wb*float64(b[i])))
	}
	return out
}

func (s *Server) startInvert(_ context.Context, r *http.Request, body []byte) (any, *apiError) {
	req, aerr := decodeInvert(body, s.inv.Guesser() != "seeds")
	if aerr != nil {
		return nil, aerr
	}
	if aerr := s.limits.admit(r, 1); aerr != nil {
		return nil, aerr
	}
	release, aerr := s.limits.startJob(r)
	if aerr != nil {
		return nil, aerr
	}
	if req.Method == "" {
		req.Method = s.info.Invert.Default
	}
	if req.Steps == 0 {
		req.Steps = s.cfg.InvertSteps
	}
	if req.Method == InvertEncoder {
		req.Steps = 1
	}
	target, url, err := s.targetFloats(req.img)
	if err != nil {
		release()
		return nil, &apiError{Status: http.StatusInternalServerError, Msg: err.Error()}
	}
	ctx, cancel := context.WithCancel(s.base)
	j := &invertJob{cancel: cancel, st: invertStatus{Method: req.Method, Steps: req.Steps, Target: url}, polled: time.Now()}
	if aerr := s.jobs.add(j); aerr != nil {
		cancel()
		release()
		return nil, aerr
	}
	go func() {
		defer release()
		defer cancel()
		s.runInvert(ctx, j, req, target)
	}()
	return j.status(), nil
}

func (s *Server) pollInvert(_ context.Context, r *http.Request, _ []byte) (any, *apiError) {
	id := r.PathValue("id")
	j, ok := s.jobs.get(id)
	if !ok {
		return nil, &apiError{Status: http.StatusNotFound, Field: "id", Msg: fmt.Sprintf("no inversion %q (finished ones are kept %v)", id, jobTTL)}
	}
	j.touch()
	return j.status(), nil
}

// latencies keeps the last renders' durations for p50/p95.
type latencies struct {
	mu   sync.Mutex
	ring []time.Duration
	next int
	n    int64
}

const latencyWindow = 4096

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) < latencyWindow {
		l.ring = append(l.ring, d)
	} else {
		l.ring[l.next] = d
		l.next = (l.next + 1) % latencyWindow
	}
	l.n++
}

// Stats are render latencies: model time per picture, queueing excluded.
type Stats struct {
	Renders int64   `json:"renders"`
	P50ms   float64 `json:"p50_ms"`
	P95ms   float64 `json:"p95_ms"`
	Window  int     `json:"window"` // how many recent renders the percentiles cover
}

func (l *latencies) summary() Stats {
	l.mu.Lock()
	d := slices.Clone(l.ring)
	n := l.n
	l.mu.Unlock()
	return Stats{Renders: n, P50ms: percentile(d, 0.50), P95ms: percentile(d, 0.95), Window: len(d)}
}

// percentile is the q-quantile (nearest rank) in milliseconds; 0 for none.
func percentile(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(math.Ceil(q*float64(len(d)))) - 1
	return float64(d[max(0, i)].Microseconds()) / 1000
}

// RenderStats returns the render latencies seen so far.
func (s *Server) RenderStats() Stats { return s.renders.summary() }

// Serve listens on addr and serves s until ctx is done, then shuts down
// gracefully: it stops accepting, lets requests in flight finish (up to
// 10 s), and cancels inversions. ready, if not nil, is called with the
// address actually bound (addr may end in :0).
func Serve(ctx context.Context, addr string, s *Server, ready func(addr string)) error {
	var tlsCfg *tls.Config
	if s.cfg.TLSCert != "" {
		// Load now: a wrong path or a key that does not match the
		// certificate is an error before the port opens.
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("serve: TLS: %w", err)
		}
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	var h http.Handler = s
	if ip, ok := ln.Addr().(*net.TCPAddr); ok && ip.IP.IsLoopback() {
		h = loopbackOnly(s)
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// A request may wait Timeout for a core, then render.
		WriteTimeout: s.cfg.Timeout + 30*time.Second,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     s.log,
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	<-errc
	return nil
}

// IsLoopbackHost reports whether host (no port) names only this machine:
// "localhost" or a loopback IP, bracketed or not. "" and 0.0.0.0 do not.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// loopbackOnly refuses requests whose Host is not a loopback name. A server
// bound to loopback is meant for this machine's browser; without the check,
// a web page whose domain re-resolves to 127.0.0.1 (DNS rebinding) could
// call the API as if it were the page itself.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !IsLoopbackHost(host) {
			writeError(w, &apiError{Status: http.StatusMisdirectedRequest, Msg: fmt.Sprintf("host %q: this server answers only to localhost", r.Host)})
			return
		}
		next.ServeHTTP(w, r)
	})
}
