// Package tensorfile reads the named tensors of the two files PyTorch users
// hold — .safetensors files and .pt/.pth state dicts (a zip archive around a
// pickle) — without running anything they contain, and writes float32
// tensors in those two formats and NumPy's .npy (write.go), for editors
// exported back to PyTorch. It knows nothing of architectures or editors
// (package interop maps names onto a generator and an editor onto tensors).
//
// Pickles are programs: the unpickler calls whatever global the file names.
// Only the globals a state dict needs are resolved here (the tensor
// rebuilders and the storage classes; collections.OrderedDict inside the
// unpickler); any other global is refused by name before it could be
// called, and the result must be a mapping of names to tensors.
package tensorfile

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
)

// Tensor is one named tensor. Floating-point tensors of every width are
// converted to float32 (Data); integer and boolean tensors (batch norm's
// num_batches_tracked) keep only their dtype and shape.
type Tensor struct {
	DType string // safetensors' names: F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL
	Shape []int
	Data  []float32 // nil for integer and boolean tensors
}

// IsFloat reports whether t holds floating-point values.
func (t Tensor) IsFloat() bool {
	return t.DType == "F32" || t.DType == "F64" || t.DType == "F16" || t.DType == "BF16"
}

// Formats of the files Read understands.
const (
	FormatSafetensors = "safetensors"
	FormatPyTorch     = "pt"
)

// ErrFormat is wrapped by every error about a file's content, as opposed to
// the file system.
var ErrFormat = errors.New("invalid tensor file")

// Read returns the tensors of path and its format, chosen by the extension:
// .safetensors, or .pt/.pth/.bin (torch.save's zip format). Every
// floating-point value is checked: a NaN or infinite weight is refused with
// its tensor named.
func Read(path string) (map[string]Tensor, string, error) {
	var (
		ts     map[string]Tensor
		format string
		err    error
	)
	switch strings.ToLower(filepath.Ext(path)) {
	case ".safetensors":
		format = FormatSafetensors
		ts, err = readSafetensors(path)
	case ".pt", ".pth", ".bin":
		format = FormatPyTorch
		ts, err = readPyTorch(path)
	default:
		return nil, "", fmt.Errorf("read %s: %w: unknown extension %q (want .safetensors, .pt or .pth)", path, ErrFormat, filepath.Ext(path))
	}
	if err != nil {
		return nil, format, err
	}
	for name, t := range ts {
		for i, v := range t.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, format, fmt.Errorf("read %s: %w: tensor %s: value %d of %d is %v (a diverged or corrupted checkpoint)", path, ErrFormat, name, i, len(t.Data), v)
			}
		}
	}
	return ts, format, nil
}

// elemSize is the byte width of a dtype, 0 for one Read does not know.
func elemSize(dtype string) int {
	switch dtype {
	case "F64", "I64":
		return 8
	case "F32", "I32":
		return 4
	case "F16", "BF16", "I16":
		return 2
	case "I8", "U8", "BOOL":
		return 1
	}
	return 0
}

// halfToFloat converts IEEE 754 binary16 bits to float32.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf, NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: frac·2⁻²⁴
		v := float32(frac) / (1 << 24)
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

// bf16ToFloat converts bfloat16 bits (the top half of a float32) to float32.
func bf16ToFloat(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// checkedNumel is the element count of shape, refusing negative dimensions
// and counts past limit (the caller's bytes available), so a crafted shape
// cannot overflow or make us allocate more than the file holds.
func checkedNumel(shape []int, limit int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d != 0 && n > limit/int64(d) {
			return 0, fmt.Errorf("shape %v holds more elements than the file has bytes", shape)
		}
		n *= int64(d)
	}
	return n, nil
}
