package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/internal/atomicfile"
)

// Checkpoint file layout (all integers little-endian):
//
//	magic   "LEDCKPT\n"                        8 bytes
//	version uint32                             = CheckpointVersion
//	hlen    uint32                             length of the JSON header
//	header  JSON checkpointHeader              hlen bytes
//	data    raw tensor bytes, in header order
//	sum     sha256 of everything above         32 bytes
//
// One file holds every variable of a context (weights, optimiser state, batch
// norm averages, the data-order cursor), so a resumed run restarts exactly.
// It is written atomically and verified whole before anything is loaded: a
// truncated or corrupted file changes nothing in the context.
const (
	checkpointMagic = "LEDCKPT\n"
	// CheckpointVersion is the only layout Load accepts.
	CheckpointVersion = 1
	maxHeader         = 64 << 20
)

type checkpointHeader struct {
	Meta      map[string]string `json:"meta,omitempty"`
	Variables []checkpointVar   `json:"variables"`
}

type checkpointVar struct {
	Name  string `json:"name"` // scope and name, e.g. "/generator/conv0/weights"
	DType string `json:"dtype"`
	Shape []int  `json:"shape"`
	Bytes int64  `json:"bytes"`
}

// SaveCheckpoint writes every variable of ctx in scope prefix or below it
// ("" for all) and meta to path atomically.
func SaveCheckpoint(ctx *context.Context, path, prefix string, meta map[string]string) error {
	vals := map[string]*tensors.Tensor{}
	for v := range ctx.IterVariables() {
		if InScope(v.Scope(), prefix) {
			t, err := v.Value()
			if err != nil {
				return fmt.Errorf("save checkpoint %s: variable %s: %w", path, v.ScopeAndName(), err)
			}
			vals[v.ScopeAndName()] = t
		}
	}
	return SaveTensors(path, vals, meta)
}

// SaveTensors writes named tensors ("/scope/name") and meta to path
// atomically, in the checkpoint format LoadCheckpoint reads.
func SaveTensors(path string, vals map[string]*tensors.Tensor, meta map[string]string) error {
	names := make([]string, 0, len(vals))
	for n := range vals {
		names = append(names, n)
	}
	sort.Strings(names)
	h := checkpointHeader{Meta: meta}
	datas := make([][]byte, len(names))
	for i, n := range names {
		t := vals[n]
		var buf []byte
		t.ConstBytes(func(b []byte) { buf = append([]byte(nil), b...) })
		datas[i] = buf
		h.Variables = append(h.Variables, checkpointVar{
			Name: n, DType: t.DType().String(), Shape: t.Shape().Dimensions, Bytes: int64(len(buf)),
		})
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	err = atomicfile.Write(path, func(w io.Writer) error {
		sum := sha256.New()
		mw := io.MultiWriter(w, sum)
		var pre [16]byte
		copy(pre[:8], checkpointMagic)
		binary.LittleEndian.PutUint32(pre[8:], CheckpointVersion)
		binary.LittleEndian.PutUint32(pre[12:], uint32(len(hj)))
		for _, b := range append([][]byte{pre[:], hj}, datas...) {
			if _, err := mw.Write(b); err != nil {
				return err
			}
		}
		_, err := w.Write(sum.Sum(nil))
		return err
	})
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	return nil
}

// ErrCheckpoint is wrapped by every error about a file's content (as opposed
// to the file system), so callers can tell "corrupt" from "missing".
var ErrCheckpoint = errors.New("invalid checkpoint")

// ReadCheckpoint reads and verifies path and returns its tensors by name and
// its meta data, without touching any context.
func ReadCheckpoint(path string) (map[string]*tensors.Tensor, map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load checkpoint: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("load checkpoint %s: %w: %s", path, ErrCheckpoint, fmt.Sprintf(format, args...))
	}
	if len(raw) < 16+sha256.Size {
		return nil, nil, bad("file is %d bytes, too short (truncated?)", len(raw))
	}
	if string(raw[:8]) != checkpointMagic {
		return nil, nil, bad("not a latentedit checkpoint (bad magic %q)", raw[:8])
	}
	if v := binary.LittleEndian.Uint32(raw[8:]); v != CheckpointVersion {
		return nil, nil, bad("format version %d, this build reads version %d", v, CheckpointVersion)
	}
	body, sum := raw[:len(raw)-sha256.Size], raw[len(raw)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, nil, bad("checksum mismatch (file truncated or corrupted)")
	}
	hlen := int(binary.LittleEndian.Uint32(raw[12:]))
	if hlen > maxHeader || 16+hlen > len(body) {
		return nil, nil, bad("header length %d exceeds the file", hlen)
	}
	var h checkpointHeader
	if err := json.Unmarshal(body[16:16+hlen], &h); err != nil {
		return nil, nil, bad("header: %v", err)
	}
	out := make(map[string]*tensors.Tensor, len(h.Variables))
	off := int64(16 + hlen)
	for _, v := range h.Variables {
		dt, err := dtypes.DTypeString(v.DType)
		if err != nil {
			return nil, nil, bad("variable %s: dtype %q: %v", v.Name, v.DType, err)
		}
		n := int64(dt.Size())
		for _, d := range v.Shape {
			if d < 0 {
				return nil, nil, bad("variable %s: negative dimension in %v", v.Name, v.Shape)
			}
			n *= int64(d)
		}
		if n != v.Bytes || off+n > int64(len(body)) {
			return nil, nil, bad("variable %s: shape %v needs %d bytes, header says %d, %d left", v.Name, v.Shape, n, v.Bytes, int64(len(body))-off)
		}
		t := tensors.FromShape(shapesOf(dt, v.Shape))
		t.MutableBytes(func(b []byte) { copy(b, body[off:off+n]) })
		out[v.Name] = t
		off += n
	}
	if off != int64(len(body)) {
		return nil, nil, bad("%d unexpected bytes after the last variable", int64(len(body))-off)
	}
	return out, h.Meta, nil
}

// LoadCheckpoint reads path and sets the variables of ctx from it. A variable
// that already exists in ctx must have the same shape and dtype; one that does
// not yet exist is created with the loaded value, so that building the model
// graph afterwards finds it. Nothing is changed unless the whole file is valid
// and every shape matches.
func LoadCheckpoint(ctx *context.Context, path string) (map[string]string, error) {
	vals, meta, err := ReadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(vals))
	for n := range vals {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		scope, name := context.SplitScope(n)
		if v := ctx.GetVariableByScopeAndName(scope, name); v != nil {
			if !v.Shape().Equal(vals[n].Shape()) {
				return nil, fmt.Errorf("load checkpoint %s: %w: variable %s has shape %s in the file but %s in the model", path, ErrCheckpoint, n, vals[n].Shape(), v.Shape())
			}
		}
	}
	for _, n := range names {
		scope, name := context.SplitScope(n)
		if v := ctx.GetVariableByScopeAndName(scope, name); v != nil {
			if err := v.SetValue(vals[n]); err != nil {
				return nil, fmt.Errorf("load checkpoint %s: variable %s: %w", path, n, err)
			}
			continue
		}
		ctx.InAbsPath(scope).Checked(false).VariableWithValue(name, vals[n])
	}
	return meta, nil
}

func shapesOf(dt dtypes.DType, dims []int) shapes.Shape { return shapes.Make(dt, dims...) }
