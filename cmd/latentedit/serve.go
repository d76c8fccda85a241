package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
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
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return errUsage{fmt.Errorf("--addr %q: %w", *addr, err)}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, *model, *backend, *addr, server.Config{Timeout: *timeout, Workers: *workers}, stdout, stderr)
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
		fmt.Fprintf(stdout, "serving %s at http://%s/ (Ctrl-C stops)\n", model, bound)
	})
}

// serveDemo is `demo --serve`: after the report, the editor on the faces
// GAN, whose shipped editors the report just measured.
func serveDemo(backend string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, "faces-gan", backend, "127.0.0.1:8080", server.Config{}, stdout, stderr)
}
