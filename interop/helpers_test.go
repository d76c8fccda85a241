package interop

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"latentedit/engine"
	"math"
	"testing"

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
	h, _ := json.Marshal(map[string]any{name: map[string]any{"dtype": "F32", "shape": []int{1, len(vals)}, "data_offsets": []int{0, 4 * len(vals)}}})
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	out = append(out, h...)
	for _, v := range vals {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	return out
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
