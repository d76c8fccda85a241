package tensorfile

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// A .safetensors file: an 8-byte little-endian header length N, N bytes of
// JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, and an
// optional "__metadata__": {string: string}}, then the raw little-endian
// data, offsets relative to its start.

// maxSafetensorsHeader bounds the JSON header (the format's own readers
// refuse above 100 MB); a larger claim is a corrupted or hostile file.
const maxSafetensorsHeader = 100 << 20

type safetensorsEntry struct {
	DType   string  `json:"dtype"`
	Shape   []int   `json:"shape"`
	Offsets []int64 `json:"data_offsets"`
}

func readSafetensors(path string) (map[string]Tensor, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("read %s: %w: %s", path, ErrFormat, fmt.Sprintf(format, args...))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	size := st.Size()
	var pre [8]byte
	if _, err := io.ReadFull(f, pre[:]); err != nil {
		return nil, bad("file is %d bytes, too short for the 8-byte header length (truncated?)", size)
	}
	// The claim is checked against the file before anything is allocated.
	hlen := binary.LittleEndian.Uint64(pre[:])
	if hlen > uint64(size-8) {
		return nil, bad("header length claims %d bytes but only %d follow (truncated, or not a safetensors file)", hlen, size-8)
	}
	if hlen > maxSafetensorsHeader {
		return nil, bad("header length %d exceeds the %d-byte limit", hlen, maxSafetensorsHeader)
	}
	raw := make([]byte, size-8)
	if _, err := io.ReadFull(f, raw); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(raw[:hlen], &entries); err != nil {
		return nil, bad("header: %v", err)
	}
	data := raw[hlen:]
	out := make(map[string]Tensor, len(entries))
	type span struct {
		name       string
		begin, end int64
	}
	var spans []span
	for name, msg := range entries {
		if name == "__metadata__" {
			continue
		}
		var e safetensorsEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, bad("tensor %s: %v", name, err)
		}
		es := elemSize(e.DType)
		if es == 0 {
			return nil, bad("tensor %s: dtype %q is not supported (F32, F64, F16, BF16 or an integer type)", name, e.DType)
		}
		if len(e.Offsets) != 2 || e.Offsets[0] < 0 || e.Offsets[0] > e.Offsets[1] || e.Offsets[1] > int64(len(data)) {
			return nil, bad("tensor %s: data_offsets %v outside the %d data bytes (truncated?)", name, e.Offsets, len(data))
		}
		n, err := checkedNumel(e.Shape, int64(len(data)))
		if err != nil {
			return nil, bad("tensor %s: %v", name, err)
		}
		if n*int64(es) != e.Offsets[1]-e.Offsets[0] {
			return nil, bad("tensor %s: shape %v of %s needs %d bytes, data_offsets %v give %d", name, e.Shape, e.DType, n*int64(es), e.Offsets, e.Offsets[1]-e.Offsets[0])
		}
		spans = append(spans, span{name, e.Offsets[0], e.Offsets[1]})
		out[name] = Tensor{DType: e.DType, Shape: append([]int{}, e.Shape...), Data: decodeFloats(e.DType, data[e.Offsets[0]:e.Offsets[1]])}
	}
	// Overlapping tensors would alias one another's bytes: the format forbids it.
	sort.Slice(spans, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	for i := 1; i < len(spans); i++ {
		if spans[i].begin < spans[i-1].end {
			return nil, bad("tensors %s and %s overlap", spans[i-1].name, spans[i].name)
		}
	}
	return out, nil
}

// decodeFloats converts little-endian floating-point bytes to float32; it
// returns nil for integer and boolean dtypes.
func decodeFloats(dtype string, b []byte) []float32 {
	le := binary.LittleEndian
	var out []float32
	switch dtype {
	case "F32":
		out = make([]float32, len(b)/4)
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
	case "F64":
		out = make([]float32, len(b)/8)
		for i := range out {
			out[i] = float32(math.Float64frombits(le.Uint64(b[8*i:])))
		}
	case "F16", "BF16":
		conv := halfToFloat
		if dtype == "BF16" {
			conv = bf16ToFloat
		}
		out = make([]float32, len(b)/2)
		for i := range out {
			out[i] = conv(le.Uint16(b[2*i:]))
		}
	}
	return out
}
