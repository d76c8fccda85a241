// Package models embeds the default models shipped with latentedit — a faces
// GAN and VAE (32×32), an MNIST GAN and a fundus GAN (64×64), each trained by
// our own `train` command (docs/models.md has the commands) — so that the
// binary runs its main job with nothing else on disk.
//
// Commands read model directories, so Extract writes an embedded model to a
// folder once and reuses it while its content is unchanged.
package models

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"latentedit/internal/atomicfile"
)

//go:embed faces-gan faces-vae mnist-gan fundus-gan
var files embed.FS

// Names lists the embedded models.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// FS returns the embedded files of one model.
func FS(name string) (fs.FS, error) {
	if _, err := fs.Stat(files, name); err != nil {
		return nil, fmt.Errorf("models: no embedded model %q (have %s)", name, strings.Join(Names(), ", "))
	}
	return fs.Sub(files, name)
}

// Extract writes the embedded model name under root (default: the user's
// cache folder) in a folder named after the content's hash, and returns that
// folder. An existing complete copy is reused, so extraction happens once per
// build of the models.
func Extract(name, root string) (string, error) {
	sub, err := FS(name)
	if err != nil {
		return "", err
	}
	if root == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			c = os.TempDir()
		}
		root = filepath.Join(c, "latentedit", "models")
	}
	h := sha256.New()
	var paths []string
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		paths = append(paths, p)
		b, err := fs.ReadFile(sub, p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("models: %s: %w", name, err)
	}
	dir := filepath.Join(root, name+"-"+hex.EncodeToString(h.Sum(nil))[:12])
	done := filepath.Join(dir, ".complete")
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	for _, p := range paths {
		b, _ := fs.ReadFile(sub, p)
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", fmt.Errorf("models: extract %s: %w", name, err)
		}
		if err := atomicfile.WriteFile(dst, b, 0o644); err != nil {
			return "", fmt.Errorf("models: extract %s: %w", name, err)
		}
	}
	// The marker is written last: a killed extraction is redone, never half-used.
	if err := atomicfile.WriteFile(done, nil, 0o644); err != nil {
		return "", fmt.Errorf("models: extract %s: %w", name, err)
	}
	return dir, nil
}
