package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"latentedit/server"
	"latentedit/workspace"
)

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	model := fs.String("model", "faces-gan", "model directory or embedded model name")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on (loopback unless you choose otherwise)")
	backend := fs.String("backend", "", "go (CPU) or xla:/abs/path/plugin.so")
	timeout := fs.Duration("timeout", 60*time.Second, "per request, waiting for a free core included")
	workers := fs.Int("workers", 0, "model evaluations at once (0: one per core)")
	tokenFile := fs.String("token-file", "", "file holding the access token every API request must carry (16+ characters)")
	newToken := fs.Bool("new-token", false, "make a random access token and print the link that carries it, once")
	noAuth := fs.Bool("no-auth", false, "serve beyond loopback without an access token (anyone who reaches the port can use it)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate: serve HTTPS (with --tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	d := server.DefaultConfig()
	rate := fs.Float64("rate", d.Rate, "per client: pictures, edits and inversion starts a second (negative: no limit)")
	burst := fs.Int("burst", d.Burst, "per client: how many of them at once")
	clientJobs := fs.Int("client-jobs", d.ClientJobs, "per client: inversions running at once")
	space := fs.String("space", "z", "latent space to serve: z, w or w+ (style generators); editors of other spaces are listed as skipped")
	if err := parse(fs, args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return errUsage{fmt.Errorf("--addr %q: %w", *addr, err)}
	}
	token, err := accessToken(*tokenFile, *newToken, *noAuth)
	if err != nil {
		return err
	}
	if token == "" && !*noAuth && !server.IsLoopbackHost(host) {
		return errUsage{fmt.Errorf("--addr %s serves beyond this machine: give --token-file FILE or --new-token (every API request then needs the token), or --no-auth to serve without one", *addr)}
	}
	if *noAuth && !server.IsLoopbackHost(host) {
		fmt.Fprintf(stderr, "warning: --no-auth on %s: anyone who can reach this port can use every endpoint\n", *addr)
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return errUsage{fmt.Errorf("--tls-cert and --tls-key go together")}
	}
	if *rate == 0 || *burst < 1 || *clientJobs < 1 {
		return errUsage{fmt.Errorf("--rate %g, --burst %d, --client-jobs %d: a zero limit would refuse every request (a negative --rate means no limit)", *rate, *burst, *clientJobs)}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := server.Config{Timeout: *timeout, Workers: *workers, Token: token, Rate: *rate, Burst: *burst,
		ClientJobs: *clientJobs, TLSCert: *tlsCert, TLSKey: *tlsKey, Space: *space}
	return serve(ctx, *model, *backend, *addr, cfg, stdout, stderr)
}

// accessToken reads the token file, or makes a token for --new-token; ""
// when neither is asked for.
func accessToken(file string, generate, noAuth bool) (string, error) {
	switch {
	case noAuth && (file != "" || generate):
		return "", errUsage{fmt.Errorf("--no-auth contradicts --token-file and --new-token")}
	case file != "" && generate:
		return "", errUsage{fmt.Errorf("--token-file and --new-token: choose one")}
	case generate:
		var b [24]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		return hex.EncodeToString(b[:]), nil
	case file != "":
		raw, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		t := strings.TrimSpace(string(raw))
		if len(t) < 16 || strings.ContainsAny(t, " \t\r\n") {
			return "", errUsage{fmt.Errorf("--token-file %s: the token must be one word of at least 16 characters", file)}
		}
		return t, nil
	}
	return "", nil
}

// serve opens the model and serves it until ctx is done (Ctrl-C); demo
// --serve ends here too.
func serve(ctx context.Context, model, backend, addr string, cfg server.Config, stdout, stderr io.Writer) error {
	ws, err := workspace.Open(model, backend)
	if err != nil {
		return err
	}
	cfg.Model = model
	cfg.Log = stderr
	s, err := server.New(ws, cfg)
	if err != nil {
		return err
	}
	return server.Serve(ctx, addr, s, func(bound string) {
		fmt.Fprintf(stdout, "serving %s at %s (Ctrl-C stops)\n", model, pageLink(bound, cfg))
	})
}

// pageLink is the address to open: https with TLS, a reachable host name
// for a wildcard bind, and the token in the fragment (never sent to the
// server, moved out of the address bar by the page).
func pageLink(bound string, cfg server.Config) string {
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	host, port, _ := net.SplitHostPort(bound)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port), Path: "/"}
	if cfg.Token != "" {
		u.Fragment = "token=" + cfg.Token
	}
	return u.String()
}

// serveDemo is `demo --serve`: after the report, the editor on the faces
// GAN, whose shipped editors the report just measured.
func serveDemo(backend string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, "faces-gan", backend, "127.0.0.1:8080", server.Config{}, stdout, stderr)
}
