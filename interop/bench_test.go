package interop

import (
	"path/filepath"
	"testing"

	"latentedit/generator"
)

// BenchmarkImportSNResNet64 imports GANLatentDiscovery's sn_resnet64 at its
// real size (widths 1024…64, latent 128, 64×64×3, about 18M parameters) from
// .pt: reading, checking, converting, writing, loading back with one
// generator run, and the 16-image samples.png. The target is under
// 5 s. The first import is also compared with PyTorch's images.
func BenchmarkImportSNResNet64(b *testing.B) {
	f := fixture{Name: "real64", Arch: "sn_resnet", Seed: 4, N: 2, Channels: 3, Latent: 128, Widths: generator.SNResNet64}
	dir := makeFixtures(b, f)
	importAndCompare(b, dir, f, "real64.pt", Options{Arch: ArchSNResNet64})
	i := 0
	for b.Loop() {
		i++
		_, err := Import(Options{From: filepath.Join(dir, "real64.pt"), Arch: ArchSNResNet64, Backend: cpu(b),
			Out: filepath.Join(b.TempDir(), "m")})
		if err != nil {
			b.Fatal(err)
		}
	}
}
