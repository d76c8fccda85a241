package tensorfile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Named is a float32 tensor to write: its name, shape (row-major) and values.
type Named struct {
	Name  string
	Shape []int
	Data  []float32
}

// check refuses a tensor whose values do not fill its shape, and names that
// repeat or are empty.
func check(ts []Named) error {
	seen := map[string]bool{}
	for _, t := range ts {
		if t.Name == "" || seen[t.Name] || t.Name == "__metadata__" {
			return fmt.Errorf("tensor name %q is empty, repeated or reserved", t.Name)
		}
		seen[t.Name] = true
		n := 1
		for _, d := range t.Shape {
			if d < 0 {
				return fmt.Errorf("tensor %s: negative dimension in shape %v", t.Name, t.Shape)
			}
			n *= d
		}
		if len(t.Data) > math.MaxInt32 {
			return fmt.Errorf("tensor %s: %d values, over the 2³¹−1 this writer handles", t.Name, len(t.Data))
		}
		if n != len(t.Data) {
			return fmt.Errorf("tensor %s: shape %v holds %d values, have %d", t.Name, t.Shape, n, len(t.Data))
		}
	}
	return nil
}

func float32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// WriteSafetensors writes ts as a .safetensors file (F32, sorted by name,
// contiguous) with meta as its "__metadata__" map. The header is padded
// with spaces to a multiple of 8 bytes, as the format's own writer does.
func WriteSafetensors(w io.Writer, ts []Named, meta map[string]string) error {
	if err := check(ts); err != nil {
		return err
	}
	ts = sorted(ts)
	header := map[string]any{}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	var off int64
	for _, t := range ts {
		n := int64(4 * len(t.Data))
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = safetensorsEntry{DType: "F32", Shape: shape, Offsets: []int64{off, off + n}}
		off += n
	}
	h, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	if _, err := w.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(h)))); err != nil {
		return err
	}
	if _, err := w.Write(h); err != nil {
		return err
	}
	for _, t := range ts {
		if _, err := w.Write(float32Bytes(t.Data)); err != nil {
			return err
		}
	}
	return nil
}

func sorted(ts []Named) []Named {
	ts = append([]Named(nil), ts...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return ts
}

// WriteNpy writes one tensor as a NumPy .npy file (version 1.0,
// little-endian float32, C order): what numpy.load reads.
func WriteNpy(w io.Writer, t Named) error {
	if err := check([]Named{t}); err != nil {
		return err
	}
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = strconv.Itoa(d)
	}
	shape := strings.Join(dims, ", ")
	if len(dims) == 1 {
		shape += ","
	}
	h := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shape)
	// magic (6) + version (2) + length (2) + header, padded to 64 with a final newline.
	pad := 64 - (10+len(h)+1)%64
	if pad == 64 {
		pad = 0
	}
	h += strings.Repeat(" ", pad) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	b.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(h))))
	b.WriteString(h)
	b.Write(float32Bytes(t.Data))
	_, err := w.Write(b.Bytes())
	return err
}

// WritePyTorch writes ts as torch.save would write a state dict in its zip
// format: archive/data.pkl, a protocol-2 pickle of an OrderedDict of
// name → torch._utils._rebuild_tensor_v2(FloatStorage, 0, shape, stride,
// False, OrderedDict()), each tensor's storage in archive/data/<i>, and
// archive/version. meta, when not empty, is one more entry "__metadata__":
// a dict of strings (torch.load returns it as it is; pop it before
// load_state_dict). Entries are stored uncompressed and without data
// descriptors, as torch's reader expects.
func WritePyTorch(w io.Writer, ts []Named, meta map[string]string) error {
	if err := check(ts); err != nil {
		return err
	}
	var p pickler
	p.raw("\x80\x02")                       // PROTO 2
	p.raw("ccollections\nOrderedDict\n)R(") // OrderedDict(), MARK
	for i, t := range ts {
		p.str(t.Name)
		p.raw("ctorch._utils\n_rebuild_tensor_v2\n(") // the rebuilder, MARK of its arguments
		// Persistent id ('storage', torch.FloatStorage, key, 'cpu', numel).
		p.raw("(")
		p.str("storage")
		p.raw("ctorch\nFloatStorage\n")
		p.str(strconv.Itoa(i))
		p.str("cpu")
		p.int(len(t.Data))
		p.raw("tQ") // TUPLE, BINPERSID
		p.int(0)    // storage offset
		stride := make([]int, len(t.Shape))
		s := 1
		for j := len(t.Shape) - 1; j >= 0; j-- {
			stride[j] = s
			s *= t.Shape[j]
		}
		p.ints(t.Shape)
		p.ints(stride)
		p.raw("\x89ccollections\nOrderedDict\n)R") // requires_grad False, backward hooks
		p.raw("tR")                                // TUPLE, REDUCE
	}
	if len(meta) > 0 {
		p.str("__metadata__")
		p.raw("}(")
		keys := make([]string, 0, len(meta))
		for k := range meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p.str(k)
			p.str(meta[k])
		}
		p.raw("u")
	}
	p.raw("u.") // SETITEMS, STOP

	zw := zip.NewWriter(w)
	add := func(name string, data []byte) error {
		f, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Store, CRC32: crc32.ChecksumIEEE(data),
			CompressedSize64: uint64(len(data)), UncompressedSize64: uint64(len(data))})
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		return err
	}
	err := add("archive/data.pkl", p.Bytes())
	for i, t := range ts {
		if err == nil {
			err = add(fmt.Sprintf("archive/data/%d", i), float32Bytes(t.Data))
		}
	}
	if err == nil {
		err = add("archive/version", []byte("3\n"))
	}
	return errors.Join(err, zw.Close())
}

// pickler writes the few protocol-2 opcodes WritePyTorch needs.
type pickler struct{ bytes.Buffer }

func (p *pickler) raw(s string) { p.WriteString(s) }

// str is BINUNICODE.
func (p *pickler) str(s string) {
	p.WriteByte('X')
	p.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(s))))
	p.WriteString(s)
}

// int is BININT (a signed 32-bit integer: tensor sizes here are far below).
func (p *pickler) int(v int) {
	p.WriteByte('J')
	p.Write(binary.LittleEndian.AppendUint32(nil, uint32(int32(v))))
}

// ints is a tuple of ints.
func (p *pickler) ints(v []int) {
	p.WriteByte('(')
	for _, x := range v {
		p.int(x)
	}
	p.WriteByte('t')
}
