package generator

import (
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strconv"

	"latentedit/dataset/export"
)

// MaxSamples bounds one WriteSamples call (a million pictures is about 10 GB
// of PNGs at 64×64).
const MaxSamples = 1_000_000

// WriteSamples writes n pictures of m into outDir, which is created if
// needed — what `latentedit sample` does:
//
//	outDir/images/000000.png, …  picture i is G(Latent(seed+i)), the picture
//	                             the web editor shows for seed seed+i, pixel
//	                             for pixel (drawn at batch 1, as it draws them)
//	outDir/latents.csv           header "file,seed,z0,…,z{d-1}", one row per
//	                             picture; each value printed so that it reads
//	                             back as the same float32
//	outDir/contact.png           the first 64 pictures in a grid
//
// Every file is written atomically; progress (may be nil) is called after
// each picture with the number done and n.
func WriteSamples(m *Model, seed int64, n int, outDir string, progress func(done, total int)) error {
	if n < 1 || n > MaxSamples {
		return fmt.Errorf("sample: %d pictures: want 1 to %d", n, MaxSamples)
	}
	if outDir == "" {
		return fmt.Errorf("sample: no output directory")
	}
	imgDir := filepath.Join(outDir, "images")
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	d := m.LatentDim()
	h, w, c := m.ImageShape()
	header := []string{"file", "seed"}
	for j := 0; j < d; j++ {
		header = append(header, "z"+strconv.Itoa(j))
	}
	rows := [][]string{header}
	var sheet []image.Image
	for i := 0; i < n; i++ {
		s := seed + int64(i)
		z := m.Latent(s)
		pix, err := m.GenerateFloats(z, 1)
		if err != nil {
			return fmt.Errorf("sample: seed %d: %w", s, err)
		}
		img := ToImages(pix, 1, h, w, c)[0]
		name := fmt.Sprintf("images/%06d.png", i)
		if err := export.WritePNG(filepath.Join(outDir, name), img); err != nil {
			return fmt.Errorf("sample: %w", err)
		}
		row := append(make([]string, 0, 2+d), name, strconv.FormatInt(s, 10))
		for _, v := range z {
			row = append(row, strconv.FormatFloat(float64(v), 'g', -1, 32))
		}
		rows = append(rows, row)
		if len(sheet) < export.ContactMax {
			sheet = append(sheet, img)
		}
		if progress != nil {
			progress(i+1, n)
		}
	}
	if err := export.WriteCSV(filepath.Join(outDir, "latents.csv"), rows); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	if err := export.WriteContact(filepath.Join(outDir, "contact.png"), sheet); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	return nil
}
