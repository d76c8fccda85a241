package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serveOn starts a server with cfg over the shared workspace on a loopback
// port (through Serve, TLS included) and returns its address.
func serveOn(t testing.TB, cfg Config) (string, *Server) {
	t.Helper()
	sharedServer(t)
	cfg.Model, cfg.Timeout = "faces-gan", 3*time.Minute
	s, err := New(sharedWS, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", s, func(a string) { addr <- a }) }()
	t.Cleanup(func() { stop(); <-done })
	select {
	case a := <-addr:
		return a, s
	case err := <-done:
		t.Fatal(err)
	}
	return "", nil
}

// call sends one request with an optional token and returns the status,
// the headers and the decoded JSON body.
func call(t *testing.T, c *http.Client, method, url, token, body string) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, res.Header, out
}

// TestAccessToken: with a token, every API endpoint answers 401 without it
// and with a wrong one, and works with the right one; the page itself is
// public (it holds no data).
func TestAccessToken(t *testing.T) {
	url := tokenServer(t)
	z, _ := json.Marshal(make([]float32, 64))
	endpoints := []struct{ method, path, body string }{
		{"GET", "/api/info", ""},
		{"GET", "/api/stats", ""},
		{"POST", "/api/sample", `{"seed":1,"count":1}`},
		{"POST", "/api/render", `{"latents":[` + string(z) + `]}`},
		{"POST", "/api/edit", `{"editor":"linear","latent":` + string(z) + `,"steps":[{"direction":"0","t":1}]}`},
		{"POST", "/api/interpolate", `{"a":` + string(z) + `,"b":` + string(z) + `,"mix":0.5,"mode":"linear"}`},
		{"POST", "/api/recipe", `{"format_version":1,"latent":` + string(z) + `}`},
		{"POST", "/api/invert", `{"image":"` + pngBase64(8, 8) + `","steps":1}`},
		{"GET", "/api/invert/feedface", ""},
		{"GET", "/api/nosuch", ""},
	}
	for _, e := range endpoints {
		for _, tok := range []string{"", "wrong-token-0123456789"} {
			code, h, body := call(t, nil, e.method, url+e.path, tok, e.body)
			if code != http.StatusUnauthorized || body["error"] == nil || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s with token %q: %d %v, want 401 with a JSON error and WWW-Authenticate", e.method, e.path, tok, code, body)
			}
		}
		code, _, body := call(t, nil, e.method, url+e.path, testToken, e.body)
		want := http.StatusOK
		switch e.path {
		case "/api/invert/feedface", "/api/nosuch":
			want = http.StatusNotFound // past the token: the endpoint's own answer
		}
		if code != want {
			t.Errorf("%s %s with the token: %d %v, want %d", e.method, e.path, code, body, want)
		}
	}
	res, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("the page without a token: %d", res.StatusCode)
	}
}

// TestSecurityHeaders: the page and the API carry the CSP and the other
// headers on every answer, errors included.
func TestSecurityHeaders(t *testing.T) {
	_, url := sharedServer(t)
	for _, path := range []string{"/", "/app.js", "/api/info", "/api/nosuch"} {
		res, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		csp := res.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "img-src 'self' data:", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP allows inline code: %q", path, csp)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", path, res.Header)
		}
	}
}

// TestRateLimitPerClient: a client over its rate gets 429 with Retry-After
// while a second client (another loopback address) is still served.
func TestRateLimitPerClient(t *testing.T) {
	addr, _ := serveOn(t, Config{Rate: 0.5, Burst: 3, ClientJobs: 1})
	url := "http://" + addr
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	body := `{"seed":1,"count":1}`
	var limited int
	var retry string
	for i := 0; i < 6; i++ {
		code, h, out := call(t, nil, "POST", url+"/api/sample", "", body)
		switch code {
		case 200:
		case http.StatusTooManyRequests:
			limited++
			retry = h.Get("Retry-After")
			if !strings.Contains(out["error"].(string), "limit") {
				t.Errorf("429 without a message: %v", out)
			}
		default:
			t.Fatalf("request %d: %d %v", i, code, out)
		}
	}
	if limited < 2 {
		t.Errorf("%d of 6 requests over a burst of 3 at 0.5/s were refused, want at least 2", limited)
	}
	if n, err := strconv.Atoi(retry); err != nil || n < 1 {
		t.Errorf("Retry-After %q", retry)
	}
	// The first client is still over its limit; the second is served.
	if code, _, out := call(t, other, "POST", url+"/api/sample", "", body); code != 200 {
		t.Errorf("second client: %d %v, want 200", code, out)
	}
	if code, _, _ := call(t, nil, "POST", url+"/api/sample", "", body); code != http.StatusTooManyRequests {
		t.Errorf("first client after the second was served: %d, want 429", code)
	}
	// A gallery larger than the burst is charged the burst, not refused for ever.
	if code, _, out := call(t, other, "POST", url+"/api/sample", "", `{"seed":1,"count":5}`); code != 200 && code != http.StatusTooManyRequests {
		t.Errorf("count 5 over burst 3: %d %v", code, out)
	}
}

// TestClientJobsAndAbandonedInversion: one client runs at most ClientJobs
// inversions; another client may start its own; an inversion nobody polls
// is cancelled and frees the client's slot.
func TestClientJobsAndAbandonedInversion(t *testing.T) {
	addr, _ := serveOn(t, Config{Rate: -1, ClientJobs: 1, MaxJobs: 4, AbandonAfter: 300 * time.Millisecond})
	url := "http://" + addr
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}).DialContext}}
	inv := `{"image":"` + pngBase64(16, 16) + `","steps":2000}`
	code, _, first := call(t, nil, "POST", url+"/api/invert", "", inv)
	if code != 200 {
		t.Fatalf("first inversion: %d %v", code, first)
	}
	if code, h, out := call(t, nil, "POST", url+"/api/invert", "", inv); code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Errorf("second inversion of the same client: %d %v, want 429 with Retry-After", code, out)
	}
	code, _, second := call(t, other, "POST", url+"/api/invert", "", inv)
	if code != 200 {
		t.Fatalf("another client's inversion: %d %v", code, second)
	}
	// Nobody polls the first job: it must end, abandoned, well before its 2000 steps.
	id := first["id"].(string)
	deadline := time.Now().Add(60 * time.Second)
	for {
		time.Sleep(time.Second)
		_, _, st := call(t, nil, "GET", url+"/api/invert/"+id, "", "")
		if st["done"] == true {
			if e, _ := st["error"].(string); !strings.Contains(e, "abandoned") {
				t.Fatalf("unpolled job ended with %v, want abandoned", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unpolled job still running after 60 s: %v", st)
		}
	}
	// Its slot is free again (the second client's job is abandoned too by now).
	if code, _, out := call(t, nil, "POST", url+"/api/invert", "", `{"image":"`+pngBase64(16, 16)+`","steps":1}`); code != 200 {
		t.Errorf("after the abandoned job: %d %v, want 200", code, out)
	}
}

// TestTLSRoundTrip: with a certificate and key, Serve speaks HTTPS only; a
// client that trusts the certificate gets through, with the token.
func TestTLSRoundTrip(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	addr, _ := serveOn(t, Config{Rate: -1, Token: testToken, TLSCert: certFile, TLSKey: keyFile})
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, _, out := call(t, c, "GET", "https://"+addr+"/api/info", testToken, ""); code != 200 || out["model"] != "faces-gan" {
		t.Errorf("HTTPS with the token: %d %v", code, out)
	}
	if code, _, _ := call(t, c, "GET", "https://"+addr+"/api/info", "", ""); code != http.StatusUnauthorized {
		t.Errorf("HTTPS without the token: %d, want 401", code)
	}
	res, err := http.Get("http://" + addr + "/api/info")
	if err == nil {
		res.Body.Close()
		if res.StatusCode < 400 {
			t.Errorf("plain HTTP to the TLS port answered %d", res.StatusCode)
		}
	}
	// A key that is not the certificate's is refused before the port opens.
	_, otherKey, _ := selfSigned(t, t.TempDir())
	sharedServer(t)
	s, err := New(sharedWS, Config{Model: "faces-gan", Rate: -1, TLSCert: certFile, TLSKey: otherKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := Serve(context.Background(), "127.0.0.1:0", s, nil); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("mismatched key: %v", err)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir and
// returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (cert, key string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "latentedit test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	var cb, kb bytes.Buffer
	_ = pem.Encode(&cb, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	_ = pem.Encode(&kb, &pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
	if err := os.WriteFile(cert, cb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, kb.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AppendCertsFromPEM(cb.Bytes())
	return cert, key, pool
}
