package interop

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"testing"

	"latentedit/engine"
	"latentedit/interop/tensorfile"

	"github.com/gomlx/gomlx/backends"
)

// systemPickleZip is a torch.save-shaped zip whose pickle calls
// posix.system("touch MARKER") — what os.system pickles as on Linux.
func systemPickleZip(t testing.TB, marker string) []byte {
	t.Helper()
	cmd := "touch " + marker
	var pkl bytes.Buffer
	pkl.WriteString("\x80\x02cposix\nsystem\n") // PROTO 2, GLOBAL posix.system
	pkl.WriteByte('X')                          // BINUNICODE
	pkl.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(cmd))))
	pkl.WriteString(cmd)
	pkl.WriteString("\x85R.") // TUPLE1, REDUCE, STOP
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("archive/data.pkl")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(pkl.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// safetensorsFile is a one-tensor .safetensors file of float32 values.
func safetensorsFile(t testing.TB, name string, vals []float32) []byte {
	t.Helper()
	return safetensorsOf(t, map[string]tensorfile.Tensor{name: {DType: "F32", Shape: []int{1, len(vals)}, Data: vals}})
}

// safetensorsOf is a .safetensors file of float32 tensors, in name order.
func safetensorsOf(t testing.TB, ts map[string]tensorfile.Tensor) []byte {
	t.Helper()
	header := map[string]any{}
	var data []byte
	for _, name := range slices.Sorted(maps.Keys(ts)) {
		tt := ts[name]
		header[name] = map[string]any{"dtype": "F32", "shape": tt.Shape, "data_offsets": []int{len(data), len(data) + 4*len(tt.Data)}}
		for _, v := range tt.Data {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
		}
	}
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	return append(append(out, h...), data...)
}

// cpu is the default backend, one per test binary.
var cpu = func() func(testing.TB) backends.Backend {
	var be backends.Backend
	return func(t testing.TB) backends.Backend {
		t.Helper()
		if be == nil {
			b, err := engine.NewBackend("")
			if err != nil {
				t.Fatal(err)
			}
			be = b
		}
		return be
	}
}()
