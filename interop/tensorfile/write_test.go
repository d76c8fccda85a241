package tensorfile

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestWriteReadBack: what WriteSafetensors and WritePyTorch write, Read
// reads back bit for bit; bad tensors are refused before anything is written.
func TestWriteReadBack(t *testing.T) {
	ts := []Named{
		{"b", []int{2, 3}, []float32{1, -2, 3.5, 4, 5, 6e-8}},
		{"a.weights", []int{4}, []float32{0, 1, 2, 3}},
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		file  string
		write func(*bytes.Buffer) error
	}{
		{"x.safetensors", func(b *bytes.Buffer) error { return WriteSafetensors(b, ts, map[string]string{"method": "m"}) }},
		{"x.pt", func(b *bytes.Buffer) error { return WritePyTorch(b, ts, nil) }},
	} {
		var b bytes.Buffer
		if err := tc.write(&b); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, tc.file)
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		got, _, err := Read(path)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		for _, want := range ts {
			g := got[want.Name]
			if !reflect.DeepEqual(g.Shape, want.Shape) || !reflect.DeepEqual(g.Data, want.Data) {
				t.Errorf("%s: tensor %s read back as %v %v, want %v %v", tc.file, want.Name, g.Shape, g.Data, want.Shape, want.Data)
			}
		}
	}
	var b bytes.Buffer
	for _, bad := range [][]Named{
		{{"x", []int{2, 2}, []float32{1, 2, 3}}},
		{{"x", []int{1}, []float32{1}}, {"x", []int{1}, []float32{1}}},
		{{"", []int{1}, []float32{1}}},
	} {
		if err := WriteSafetensors(&b, bad, nil); err == nil || b.Len() != 0 {
			t.Errorf("%v: err %v, %d bytes written", bad, err, b.Len())
		}
		if err := WritePyTorch(&b, bad, nil); err == nil || b.Len() != 0 {
			t.Errorf("%v: err %v, %d bytes written", bad, err, b.Len())
		}
	}
	if err := WriteNpy(&b, Named{"x", []int{3}, []float32{1, 2, 3}}); err != nil || !strings.HasPrefix(b.String(), "\x93NUMPY\x01\x00") || (b.Len()-12)%64 != 0 {
		t.Errorf("npy: err %v, %d bytes", err, b.Len())
	}
}
