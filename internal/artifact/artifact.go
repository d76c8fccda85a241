// Package artifact holds the one check every saved artifact — a model, an
// editor, an oracle, a segmenter, a calibration — goes through when it is
// read: its spec file's format version and kind, and the sha256 of the
// weights file that goes with it. Every refusal names the file and the
// field, so a truncated, replaced or foreign file is never half-read.
package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
)

// Check runs CheckVersion and CheckKind on a spec's recorded version and
// kind, and CheckWeights on weights (skipped when weights is "") against the
// recorded sha256: the whole check of an artifact whose spec records all
// three.
func Check(spec string, version, wantVersion int, kind, wantKind, weights, sha string) error {
	if err := CheckVersion(spec, version, wantVersion); err != nil {
		return err
	}
	if err := CheckKind(spec, kind, wantKind); err != nil {
		return err
	}
	if weights == "" {
		return nil
	}
	return CheckWeights(spec, weights, sha)
}

// CheckVersion refuses a spec whose format_version is not the one this
// build reads.
func CheckVersion(spec string, got, want int) error {
	if got != want {
		return fmt.Errorf("%s: field format_version: %d, this build reads %d", spec, got, want)
	}
	return nil
}

// CheckKind refuses a spec whose kind is none of want (a segmenter's spec
// where an oracle's belongs, say).
func CheckKind(spec, got string, want ...string) error {
	if !slices.Contains(want, got) {
		return fmt.Errorf("%s: field kind: %q, want %q", spec, got, want)
	}
	return nil
}

// CheckWeights refuses a weights file whose sha256 is not the one its spec
// records (field weights_sha256).
func CheckWeights(spec, weights, want string) error {
	if len(want) != 64 {
		return fmt.Errorf("%s: field weights_sha256: %q is not a sha256", spec, want)
	}
	got, err := FileSHA256(weights)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%s: sha256 %s does not match %s's weights_sha256 %s (file truncated, corrupted or replaced)", weights, got[:12], spec, want[:12])
	}
	return nil
}

// FileSHA256 is the hex sha256 of a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
