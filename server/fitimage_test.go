package server

import (
	"image"
	"image/color"
	"testing"
)

// TestFitImageTakesTheCentre: a wide picture whose middle third is white and
// whose sides are black comes out white; a tall one likewise.
func TestFitImageTakesTheCentre(t *testing.T) {
	for _, size := range []image.Point{{90, 30}, {30, 90}} {
		img := image.NewRGBA(image.Rect(10, 20, 10+size.X, 20+size.Y)) // not at the origin either
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.RGBA{0, 0, 0, 255}
				if size.X > size.Y && x >= b.Min.X+30 && x < b.Min.X+60 || size.Y > size.X && y >= b.Min.Y+30 && y < b.Min.Y+60 {
					c = color.RGBA{255, 255, 255, 255}
				}
				img.Set(x, y, c)
			}
		}
		fit := FitImage(img, 8, 8)
		for y := 0; y < 8; y++ {
			for x := 0; x < 8; x++ {
				if r, _, _, _ := fit.At(x, y).RGBA(); r < 0xf000 {
					t.Fatalf("%v picture: pixel (%d, %d) of the fitted image is %v, want the white centre", size, x, y, fit.At(x, y))
				}
			}
		}
	}
}
