// Package pngtest reads PNG files in tests: the one helper the packages
// that write pictures check them with.
package pngtest

import (
	"image"
	"image/png"
	"os"
	"testing"
)

// Read decodes the PNG at path, failing the test on any error.
func Read(t testing.TB, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}
