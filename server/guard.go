package server

import (
	"crypto/subtle"
	"fmt"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// What keeps a shared editor safe (docs/api.md, "Serving a team"): an
// access token on every API request, security headers on every response,
// and a token bucket per client on the requests that take a core, so one
// client cannot hold every core while others wait.

// securityHeaders are set on every response, page and API alike. The
// page's only script and style are its own files, its images are data URLs
// the API returns, and it talks to nothing but this server.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"X-Frame-Options":        "DENY",
	"Referrer-Policy":        "no-referrer",
}

// guard wraps the routes: security headers on everything, and the access
// token on every /api/ request when the server has one.
func (s *Server) guard(next http.Handler) http.Handler {
	want := []byte("Bearer " + s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range securityHeaders {
			w.Header().Set(k, v)
		}
		if s.cfg.Token != "" && strings.HasPrefix(r.URL.Path, "/api/") {
			got := []byte(r.Header.Get("Authorization"))
			// ConstantTimeCompare returns at once on a length mismatch,
			// which gives away only the token's length.
			if subtle.ConstantTimeCompare(got, want) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="latentedit"`)
				msg := "missing access token: send Authorization: Bearer TOKEN (the token is in the link serve printed)"
				if len(got) > 0 {
					msg = "wrong access token"
				}
				writeError(w, &apiError{Status: http.StatusUnauthorized, Msg: msg})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// clientLimits are the per-client limits: a token bucket of Rate work units
// a second (a picture, an edit, the start of an inversion) holding Burst,
// and at most Jobs inversions running. A client is a remote IP address.
type clientLimits struct {
	mu      sync.Mutex
	rate    rate.Limit
	burst   int
	jobs    int
	byIP    map[string]*client
	lastGC  time.Time
	idleTTL time.Duration
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
	jobs int // inversions running
}

func newClientLimits(perSecond float64, burst, jobs int) *clientLimits {
	r := rate.Limit(perSecond)
	if perSecond < 0 {
		r = rate.Inf
	}
	return &clientLimits{rate: r, burst: burst, jobs: jobs, byIP: map[string]*client{}, idleTTL: 10 * time.Minute}
}

// clientIP is the client's address: the peer of the connection (a proxy in
// front is one client; there is no trusted forwarding header).
func clientIP(r *http.Request) string {
	if r == nil {
		return "" // a call from inside the process (tests call handlers directly)
	}
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// get returns r's client, forgetting clients idle for idleTTL so the table
// stays as large as the set of recent clients.
func (c *clientLimits) get(r *http.Request, now time.Time) *client {
	ip := clientIP(r)
	if now.Sub(c.lastGC) > c.idleTTL {
		for k, v := range c.byIP {
			if now.Sub(v.seen) > c.idleTTL && v.jobs == 0 {
				delete(c.byIP, k)
			}
		}
		c.lastGC = now
	}
	cl := c.byIP[ip]
	if cl == nil {
		cl = &client{lim: rate.NewLimiter(c.rate, c.burst)}
		c.byIP[ip] = cl
	}
	cl.seen = now
	return cl
}

// admit takes cost work units from r's client's bucket, or answers 429
// with the seconds to wait in Retry-After. A cost above the burst is
// charged as the burst: a full bucket always admits one request.
func (c *clientLimits) admit(r *http.Request, cost int) *apiError {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	cl := c.get(r, now)
	cost = max(1, min(cost, c.burst))
	res := cl.lim.ReserveN(now, cost)
	if !res.OK() {
		return &apiError{Status: http.StatusTooManyRequests, Msg: "request larger than this client's limit", retryAfter: 1}
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		secs := int(math.Ceil(d.Seconds()))
		return &apiError{Status: http.StatusTooManyRequests, retryAfter: secs,
			Msg: fmt.Sprintf("over this client's limit of %g pictures or edits a second (burst %d); retry in %d s", float64(c.rate), c.burst, secs)}
	}
	return nil
}

// startJob counts an inversion against r's client, or refuses with 429
// when it has Jobs running; done must be called when the job ends.
func (c *clientLimits) startJob(r *http.Request) (done func(), aerr *apiError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.get(r, time.Now())
	if cl.jobs >= c.jobs {
		return nil, &apiError{Status: http.StatusTooManyRequests, retryAfter: 5,
			Msg: fmt.Sprintf("this client has %d inversions running (limit %d); wait for one to finish", cl.jobs, c.jobs)}
	}
	cl.jobs++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			cl.jobs--
			c.mu.Unlock()
		})
	}, nil
}
