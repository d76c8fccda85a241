package tensorfile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// systemPickle is a torch.save-shaped zip whose pickle calls
// posix.system(cmd) — what pickle writes for os.system on Linux.
func systemPickle(t testing.TB, cmd string) []byte {
	var pkl bytes.Buffer
	pkl.WriteString("\x80\x02cposix\nsystem\nX") // PROTO 2, GLOBAL posix.system, BINUNICODE
	pkl.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(cmd))))
	pkl.WriteString(cmd + "\x85R.") // TUPLE1, REDUCE, STOP
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("archive/data.pkl")
	w.Write(pkl.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestPickleSystemRefused: a pickle naming os.system is refused by name, and
// the command it carries never runs.
func TestPickleSystemRefused(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	path := filepath.Join(dir, "evil.pt")
	if err := os.WriteFile(path, systemPickle(t, "touch "+marker), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := Read(path)
	if err == nil || !strings.Contains(err.Error(), "refused pickle global posix.system") {
		t.Fatalf("err = %v, want a refusal naming posix.system", err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("the pickle's command ran: %v", err)
	}
}

func TestHalfToFloat(t *testing.T) {
	for bits, want := range map[uint16]float32{0x3c00: 1, 0xc000: -2, 0x0001: 1.0 / (1 << 24), 0x7bff: 65504, 0x3555: 0.33325195} {
		if got := halfToFloat(bits); got != want {
			t.Errorf("half %#04x = %v, want %v", bits, got, want)
		}
	}
	if got := bf16ToFloat(0x3f80); got != 1 {
		t.Errorf("bf16 1 = %v", got)
	}
}

// FuzzReadSafetensors: no input makes the reader panic or allocate past the
// file; it returns tensors or an error.
func FuzzReadSafetensors(f *testing.F) {
	h := []byte(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`)
	good := append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...)
	f.Add(append(good, make([]byte, 8)...))
	f.Add(binary.LittleEndian.AppendUint64(nil, 2<<30))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "f.safetensors")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ts, _, err := Read(path)
		if err == nil {
			for n, x := range ts {
				if x.IsFloat() && len(x.Data) == 0 && len(x.Shape) > 0 && x.Shape[0] != 0 {
					t.Errorf("tensor %s: shape %v but no data", n, x.Shape)
				}
			}
		}
	})
}

// FuzzReadPyTorch: malformed archives and pickles give errors, not panics.
func FuzzReadPyTorch(f *testing.F) {
	f.Add(systemPickle(f, "true"))
	f.Add([]byte("\x80\x02}q\x00."))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "f.pt")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		Read(path)
	})
}
