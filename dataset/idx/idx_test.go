package idx

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// build returns an IDX ubyte file with the given dims and data.
func build(dims []uint32, data []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, TypeUByte, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(data)
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func TestParseValid(t *testing.T) {
	raw := build([]uint32{2, 3, 4}, seq(24))
	for _, tc := range []struct {
		name string
		in   []byte
	}{{"plain", raw}, {"gzip", gz(raw)}} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Parse(tc.name, bytes.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Dims) != 3 || a.Dims[0] != 2 || a.Dims[1] != 3 || a.Dims[2] != 4 {
				t.Fatalf("dims %v", a.Dims)
			}
			if !bytes.Equal(a.Data, seq(24)) {
				t.Fatalf("data mismatch")
			}
			im, err := AsImages(tc.name, a)
			if err != nil {
				t.Fatal(err)
			}
			if im.N != 2 || im.Rows != 3 || im.Cols != 4 || !bytes.Equal(im.Image(1), seq(24)[12:]) {
				t.Fatalf("images %+v", im)
			}
			if _, err := AsLabels(tc.name, a); err == nil {
				t.Fatal("AsLabels accepted 3-D data")
			}
		})
	}
}

func TestParseLarge(t *testing.T) {
	// More than one read chunk, to exercise buffer growth.
	n := 3*chunk + 12345
	data := seq(n)
	for _, in := range [][]byte{build([]uint32{uint32(n)}, data), gz(build([]uint32{uint32(n)}, data))} {
		a, err := Parse("large", bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Data, data) {
			t.Fatal("data mismatch")
		}
	}
}

func TestParseEmptyDim(t *testing.T) {
	a, err := Parse("empty", bytes.NewReader(build([]uint32{0, 28, 28}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Data) != 0 || a.Dims[0] != 0 {
		t.Fatalf("got %+v", a)
	}
}

func TestParseCorrupt(t *testing.T) {
	good := build([]uint32{2, 3}, seq(6))
	badType := append([]byte(nil), good...)
	badType[2] = 0x0D
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "truncated: magic number"},
		{"short magic", []byte{0, 0, 8}, "truncated: magic number"},
		{"bad magic", []byte("PNG\x00\x00\x00\x00\x01"), "bad magic number"},
		{"bad magic second byte", []byte{0, 1, 8, 1, 0, 0, 0, 0}, "bad magic number"},
		{"float type", badType, "unsupported data type 0x0d (float32)"},
		{"zero dims", []byte{0, 0, 8, 0}, "bad number of dimensions 0"},
		{"too many dims", []byte{0, 0, 8, 200}, "bad number of dimensions 200"},
		{"short dims", []byte{0, 0, 8, 2, 0, 0, 0, 2, 0}, "truncated: dimensions needs 8 bytes, file has 5"},
		{"truncated data", good[:len(good)-2], "truncated: data has 4 bytes, want 6"},
		{"truncated gzip data", gz(good[:len(good)-2]), "truncated: data has 4 bytes, want 6"},
		{"trailing data", append(append([]byte(nil), good...), 1, 2), "trailing data"},
		{"huge dims", build([]uint32{0xffffffff, 0xffffffff, 0xffffffff}, nil), "too large"},
		{"dims over limit", build([]uint32{1 << 16, 1 << 15}, nil), "too large"},
		{"huge dims claim, little data", build([]uint32{1 << 29}, seq(10)), "truncated: data has 10 bytes, want 536870912"},
		{"broken gzip", []byte{0x1f, 0x8b, 0, 0}, "bad gzip header"},
		{"corrupt gzip body", corruptGzip(good), "idx: corrupt body (gzip)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Parse("corrupt body", bytes.NewReader(tc.in))
			if err == nil {
				t.Fatalf("no error, got %+v", a)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "corrupt body") {
				t.Fatalf("error %q does not name the input", err)
			}
		})
	}
}

// corruptGzip returns a gzip stream of b with a damaged checksum.
func corruptGzip(b []byte) []byte {
	z := gz(b)
	z[len(z)-6] ^= 0xff // CRC32 is in the 8-byte trailer
	return z
}

func TestReadFilesAndMismatch(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "imgs.gz")
	labs := filepath.Join(dir, "labs")
	if err := os.WriteFile(imgs, gz(build([]uint32{3, 2, 2}, seq(12))), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(labs, build([]uint32{2}, []byte{1, 2}), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := ReadImagesLabels(imgs, labs)
	if err == nil || !strings.Contains(err.Error(), "dimension mismatch") || !strings.Contains(err.Error(), imgs) || !strings.Contains(err.Error(), labs) {
		t.Fatalf("mismatch error: %v", err)
	}
	if err := os.WriteFile(labs, build([]uint32{3}, []byte{1, 2, 3}), 0o644); err != nil {
		t.Fatal(err)
	}
	im, lab, err := ReadImagesLabels(imgs, labs)
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 3 || len(lab) != 3 || lab[2] != 3 {
		t.Fatalf("got %+v %v", im, lab)
	}
	if _, err := ReadLabels(imgs); err == nil || !strings.Contains(err.Error(), "labels need 1 dimension") {
		t.Fatalf("ReadLabels of images: %v", err)
	}
	if _, err := ReadImages(labs); err == nil || !strings.Contains(err.Error(), "images need 3 dimensions") {
		t.Fatalf("ReadImages of labels: %v", err)
	}
	missing := filepath.Join(dir, "nope")
	if _, err := ReadFile(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	good := build([]uint32{2, 3}, seq(6))
	f.Add(good)
	f.Add(gz(good))
	f.Add(build([]uint32{1, 2, 2}, seq(4)))
	f.Add(gz(build([]uint32{1, 2, 2}, seq(4))))
	f.Add([]byte{})
	f.Add([]byte{0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff})
	f.Add(good[:7])
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := ParseLimit("fuzz", bytes.NewReader(in), 1<<24)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "idx: fuzz") {
				t.Fatalf("error does not name the input: %v", err)
			}
			return
		}
		n := 1
		for _, d := range a.Dims {
			n *= d
		}
		if len(a.Data) != n {
			t.Fatalf("dims %v but %d data bytes", a.Dims, len(a.Data))
		}
		if len(a.Dims) == 3 {
			im, err := AsImages("fuzz", a)
			if err != nil {
				t.Fatal(err)
			}
			if im.N > 0 {
				_ = im.Image(im.N - 1)
			}
		}
	})
}
