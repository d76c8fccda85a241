package tensorfile

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"
)

// torch.save (PyTorch ≥ 1.6) writes a zip archive ARCHIVE/data.pkl (the
// pickle), ARCHIVE/data/KEY (each storage's raw little-endian bytes) and a
// version record. The pickle names storages by persistent id
// ("storage", class, KEY, location, numel) and builds each tensor with
// torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …).

// maxPickle bounds the decompressed pickle of a state dict (names and
// shapes only: a few kilobytes for any generator).
const maxPickle = 64 << 20

// storageClasses are the storage globals a state dict may name, with their
// element's dtype.
var storageClasses = map[string]struct {
	class pytorch.StorageClassInterface
	dtype string
}{
	"torch.FloatStorage":    {&pytorch.FloatStorageClass{}, "F32"},
	"torch.DoubleStorage":   {&pytorch.DoubleStorageClass{}, "F64"},
	"torch.HalfStorage":     {&pytorch.HalfStorageClass{}, "F16"},
	"torch.BFloat16Storage": {&pytorch.BFloat16StorageClass{}, "BF16"},
	"torch.LongStorage":     {&pytorch.LongStorageClass{}, "I64"},
	"torch.IntStorage":      {&pytorch.IntStorageClass{}, "I32"},
	"torch.ShortStorage":    {&pytorch.ShortStorageClass{}, "I16"},
	"torch.CharStorage":     {&pytorch.CharStorageClass{}, "I8"},
	"torch.ByteStorage":     {&pytorch.ByteStorageClass{}, "U8"},
	"torch.BoolStorage":     {&pytorch.BoolStorageClass{}, "BOOL"},
}

// allowedGlobal resolves the only globals a state dict's pickle needs;
// every other one is refused by its name. (collections.OrderedDict is
// resolved inside gopickle's unpickler, as an inert Go type.)
func allowedGlobal(module, name string) (any, error) {
	full := module + "." + name
	switch full {
	case "torch._utils._rebuild_tensor_v2":
		return &pytorch.RebuildTensorV2{}, nil
	case "torch._utils._rebuild_parameter":
		return rebuildParameter{}, nil
	}
	if s, ok := storageClasses[full]; ok {
		return s.class, nil
	}
	return nil, fmt.Errorf("refused pickle global %s: a state dict needs only tensors and storages (save model.state_dict(), not a module or other objects)", full)
}

// rebuildParameter is torch._utils._rebuild_parameter(data, requires_grad,
// backward_hooks): a state dict of nn.Parameters, as some scripts save,
// holds the tensor data.
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("_rebuild_parameter: no arguments")
	}
	t, ok := args[0].(*pytorch.Tensor)
	if !ok {
		return nil, fmt.Errorf("_rebuild_parameter: argument is a %T, not a tensor", args[0])
	}
	return t, nil
}

func readPyTorch(file string) (out map[string]Tensor, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("read %s: %w: %s", file, ErrFormat, fmt.Sprintf(format, args...))
	}
	// gopickle reports most malformed input as errors, but a few paths
	// panic; none may cross this package's boundary.
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, bad("malformed pickle: %v", r)
		}
	}()
	zr, err := zip.OpenReader(file)
	if err != nil {
		head := make([]byte, 2)
		if f, ferr := os.Open(file); ferr == nil {
			_, _ = io.ReadFull(f, head)
			f.Close()
		}
		if head[0] == 0x80 { // a bare pickle: torch.save's legacy (pre-1.6) layout
			return nil, bad("legacy torch.save format (PyTorch < 1.6 or _use_new_zipfile_serialization=False): re-save it with torch.save(state_dict, path) in a current PyTorch")
		}
		return nil, bad("not a PyTorch zip archive (%v; truncated?)", err)
	}
	defer zr.Close()
	records := map[string]*zip.File{}
	var pkl *zip.File
	for _, f := range zr.File {
		records[f.Name] = f
		switch path.Base(f.Name) {
		case "data.pkl":
			if pkl == nil || len(f.Name) < len(pkl.Name) {
				pkl = f
			}
		case "constants.pkl":
			return nil, bad("a TorchScript archive (torch.jit.save); save the state dict with torch.save(model.state_dict(), path)")
		}
	}
	if pkl == nil {
		return nil, bad("no data.pkl in the archive")
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	raw, err := readRecord(pkl, maxPickle)
	if err != nil {
		return nil, bad("%s: %v", pkl.Name, err)
	}
	storages := map[string]any{}
	u := pickle.NewUnpickler(bytes.NewReader(raw))
	u.FindClass = allowedGlobal
	u.PersistentLoad = func(id any) (any, error) {
		return loadStorage(id, prefix, records, storages)
	}
	obj, err := u.Load()
	if err != nil {
		return nil, bad("%v", err)
	}
	return stateDict(obj, bad)
}

// loadStorage resolves a persistent id ("storage", class, key, location,
// numel), checking the record's size against numel before allocating.
func loadStorage(id any, prefix string, records map[string]*zip.File, storages map[string]any) (any, error) {
	t, ok := id.(*types.Tuple)
	if !ok || t.Len() < 5 {
		return nil, fmt.Errorf("persistent id %v is not a storage", id)
	}
	kind, _ := t.Get(0).(string)
	key, keyOK := t.Get(2).(string)
	location, locOK := t.Get(3).(string)
	numel, numelOK := t.Get(4).(int)
	if kind != "storage" || !keyOK || !locOK || !numelOK || numel < 0 {
		return nil, fmt.Errorf("persistent id %v is not a storage", id)
	}
	if s, ok := storages[key]; ok {
		return s, nil
	}
	var dtype string
	var class pytorch.StorageClassInterface
	for _, c := range storageClasses {
		if c.class == t.Get(1) {
			class, dtype = c.class, c.dtype
		}
	}
	if class == nil {
		return nil, fmt.Errorf("storage %s: class %v is not a storage class", key, t.Get(1))
	}
	rec := records[prefix+"data/"+key]
	if rec == nil {
		return nil, fmt.Errorf("storage %s: no record %sdata/%s in the archive (truncated?)", key, prefix, key)
	}
	need := uint64(numel) * uint64(elemSize(dtype))
	if rec.UncompressedSize64 != need {
		return nil, fmt.Errorf("storage %s: %d elements of %s need %d bytes, the archive holds %d", key, numel, dtype, need, rec.UncompressedSize64)
	}
	raw, err := readRecord(rec, int64(need))
	if err != nil {
		return nil, fmt.Errorf("storage %s: %v", key, err)
	}
	s := class.New(numel, location)
	if err := s.SetFromFileWithSize(bytes.NewReader(raw), numel); err != nil {
		return nil, fmt.Errorf("storage %s: %v", key, err)
	}
	storages[key] = s
	return s, nil
}

// readRecord reads a zip record whole, refusing one larger than limit.
func readRecord(f *zip.File, limit int64) ([]byte, error) {
	r, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	raw, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("record larger than %d bytes", limit)
	}
	return raw, nil
}

// stateDict checks that the unpickled object is a mapping of names to
// tensors and materialises each tensor.
func stateDict(obj any, bad func(string, ...any) error) (map[string]Tensor, error) {
	type entry struct {
		key, value any
	}
	var entries []entry
	switch d := obj.(type) {
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			oe := e.Value.(*types.OrderedDictEntry)
			entries = append(entries, entry{oe.Key, oe.Value})
		}
	case *types.Dict:
		for _, e := range *d {
			entries = append(entries, entry{e.Key, e.Value})
		}
	default:
		return nil, bad("the pickle holds a %T, not a state dict (save model.state_dict())", obj)
	}
	// A training checkpoint with a "g_ema" state dict (rosinality's
	// stylegan2-pytorch train.py): the generator is that entry.
	for _, e := range entries {
		if k, ok := e.key.(string); ok && k == "g_ema" {
			switch e.value.(type) {
			case *types.OrderedDict, *types.Dict:
				return stateDict(e.value, bad)
			}
		}
	}
	out := make(map[string]Tensor, len(entries))
	for _, e := range entries {
		name, ok := e.key.(string)
		if !ok {
			return nil, bad("state dict key %v is a %T, not a string", e.key, e.key)
		}
		pt, ok := e.value.(*pytorch.Tensor)
		if !ok {
			return nil, bad("state dict entry %s is a %T, not a tensor", name, e.value)
		}
		t, err := materialise(pt)
		if err != nil {
			return nil, bad("tensor %s: %v", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// materialise copies a (possibly strided) view of a storage into a
// contiguous row-major tensor, checking every index against the storage.
func materialise(pt *pytorch.Tensor) (Tensor, error) {
	var src []float32
	var n int
	var dtype string
	switch s := pt.Source.(type) {
	case *pytorch.FloatStorage:
		src, n, dtype = s.Data, len(s.Data), "F32"
	case *pytorch.HalfStorage:
		src, n, dtype = s.Data, len(s.Data), "F16"
	case *pytorch.BFloat16Storage:
		src, n, dtype = s.Data, len(s.Data), "BF16"
	case *pytorch.DoubleStorage:
		src = make([]float32, len(s.Data))
		for i, v := range s.Data {
			src[i] = float32(v)
		}
		n, dtype = len(s.Data), "F64"
	case *pytorch.LongStorage:
		n, dtype = len(s.Data), "I64"
	case *pytorch.IntStorage:
		n, dtype = len(s.Data), "I32"
	case *pytorch.ShortStorage:
		n, dtype = len(s.Data), "I16"
	case *pytorch.CharStorage:
		n, dtype = len(s.Data), "I8"
	case *pytorch.ByteStorage:
		n, dtype = len(s.Data), "U8"
	case *pytorch.BoolStorage:
		n, dtype = len(s.Data), "BOOL"
	default:
		return Tensor{}, fmt.Errorf("storage of type %T", pt.Source)
	}
	if len(pt.Size) != len(pt.Stride) {
		return Tensor{}, fmt.Errorf("size %v and stride %v differ in rank", pt.Size, pt.Stride)
	}
	numel, err := checkedNumel(pt.Size, int64(n)+1)
	if err != nil {
		return Tensor{}, err
	}
	t := Tensor{DType: dtype, Shape: append([]int{}, pt.Size...)}
	// The last element's offset bounds every other one (strides ≥ 0).
	last := int64(pt.StorageOffset)
	for i, d := range pt.Size {
		if pt.Stride[i] < 0 {
			return Tensor{}, fmt.Errorf("negative stride %v", pt.Stride)
		}
		if d > 0 {
			last += int64(d-1) * int64(pt.Stride[i])
		}
	}
	if numel > 0 && (pt.StorageOffset < 0 || last >= int64(n)) {
		return Tensor{}, fmt.Errorf("view (offset %d, size %v, stride %v) reaches past its storage of %d elements", pt.StorageOffset, pt.Size, pt.Stride, n)
	}
	if src == nil {
		return t, nil
	}
	t.Data = make([]float32, numel)
	idx := make([]int, len(pt.Size))
	for i := range t.Data {
		off := pt.StorageOffset
		for k, v := range idx {
			off += v * pt.Stride[k]
		}
		t.Data[i] = src[off]
		for k := len(idx) - 1; k >= 0; k-- { // next index, row-major
			if idx[k]++; idx[k] < pt.Size[k] {
				break
			}
			idx[k] = 0
		}
	}
	return t, nil
}
