// Package idx reads files in the IDX format used by MNIST and Fashion-MNIST.
//
// An IDX file starts with a 4-byte magic number: two zero bytes, a data type
// byte and the number of dimensions. Then come the dimensions as big-endian
// uint32 values, then the data in row-major order. Only the unsigned byte type
// (0x08), the one MNIST uses, is supported. Files may be gzip-compressed; the
// compression is detected from the gzip magic bytes, not from the file name.
//
// The reader never trusts the header: the product of the dimensions is checked
// for overflow and against a size limit, and the data is read in growing chunks
// so a corrupted header that claims gigabytes cannot make it allocate more than
// the input really holds.
package idx

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// TypeUByte is the IDX data type code of unsigned bytes, the only one supported.
const TypeUByte = 0x08

// MaxDims is the largest number of dimensions accepted.
const MaxDims = 8

// DefaultMaxBytes is the data size limit of Parse and ReadFile (1 GiB); the
// MNIST training images take 47 MB.
const DefaultMaxBytes = 1 << 30

// chunk is the largest amount read (and allocated) ahead of what the input has
// proved to contain.
const chunk = 1 << 22

// Array is the content of an IDX file: its dimensions and its data, row-major,
// len(Data) == product of Dims.
type Array struct {
	Dims []int
	Data []byte
}

// Images is a 3-D IDX array viewed as N images of Rows×Cols grey pixels.
type Images struct {
	N, Rows, Cols int
	Pix           []byte // N*Rows*Cols bytes, image i at Pix[i*Rows*Cols:]
}

// Image returns the pixels of image i (a sub-slice of Pix, not a copy).
func (im *Images) Image(i int) []byte {
	sz := im.Rows * im.Cols
	return im.Pix[i*sz : (i+1)*sz]
}

var gzipMagic = []byte{0x1f, 0x8b}

// Parse reads an IDX array from r, gunzipping it when it starts with the gzip
// magic. name is used in error messages (usually the file path). The data size
// is limited to DefaultMaxBytes.
func Parse(name string, r io.Reader) (*Array, error) {
	return ParseLimit(name, r, DefaultMaxBytes)
}

// ParseLimit is Parse with a limit on the number of data bytes the header may
// announce.
func ParseLimit(name string, r io.Reader, maxBytes int64) (*Array, error) {
	br := bufio.NewReader(r)
	var src io.Reader = br
	compressed := false
	if head, err := br.Peek(2); err == nil && head[0] == gzipMagic[0] && head[1] == gzipMagic[1] {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("idx: %s: bad gzip header: %w", name, err)
		}
		defer zr.Close()
		src = zr
		compressed = true
	}
	a, err := parse(src, maxBytes)
	if err != nil {
		what := ""
		if compressed {
			what = " (gzip)"
		}
		return nil, fmt.Errorf("idx: %s%s: %w", name, what, err)
	}
	return a, nil
}

func parse(r io.Reader, maxBytes int64) (*Array, error) {
	var magic [4]byte
	if n, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, readErr(err, "magic number", n, 4)
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, fmt.Errorf("bad magic number 0x%02x%02x%02x%02x: not an IDX file (want 0x0000TTNN)", magic[0], magic[1], magic[2], magic[3])
	}
	if magic[2] != TypeUByte {
		return nil, fmt.Errorf("unsupported data type 0x%02x (%s): only unsigned byte (0x08) is supported", magic[2], typeName(magic[2]))
	}
	nd := int(magic[3])
	if nd == 0 || nd > MaxDims {
		return nil, fmt.Errorf("bad number of dimensions %d (want 1 to %d)", nd, MaxDims)
	}
	hdr := make([]byte, 4*nd)
	if n, err := io.ReadFull(r, hdr); err != nil {
		return nil, readErr(err, "dimensions", n, len(hdr))
	}
	dims := make([]int, nd)
	total := int64(1)
	for i := range dims {
		d := binary.BigEndian.Uint32(hdr[4*i:])
		dims[i] = int(d)
		if d != 0 && total > maxBytes/int64(d) {
			return nil, fmt.Errorf("dimensions %v are too large: more than %d bytes of data (corrupted header?)", dimsPrefix(hdr, nd), maxBytes)
		}
		total *= int64(d)
	}
	if total > maxBytes {
		return nil, fmt.Errorf("dimensions %v are too large: %d bytes of data, limit %d (corrupted header?)", dims, total, maxBytes)
	}
	data, err := readData(r, int(total))
	if err != nil {
		return nil, fmt.Errorf("dimensions %v: %w", dims, err)
	}
	return &Array{Dims: dims, Data: data}, nil
}

// readData reads exactly total bytes and checks that nothing follows. Memory
// grows with what has actually been read, at most chunk bytes ahead.
func readData(r io.Reader, total int) ([]byte, error) {
	buf := make([]byte, 0, min(total, chunk))
	for len(buf) < total {
		if len(buf) == cap(buf) {
			nc := min(total, max(2*cap(buf), len(buf)+chunk))
			nb := make([]byte, len(buf), nc)
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				if len(buf) == total {
					break
				}
				return nil, fmt.Errorf("truncated: data has %d bytes, want %d", len(buf), total)
			}
			return nil, fmt.Errorf("reading data after %d of %d bytes: %w", len(buf), total, err)
		}
	}
	// Check for trailing garbage (and, for gzip, read to the end so that the
	// checksum is verified).
	var extra [1]byte
	for {
		n, err := r.Read(extra[:])
		if n > 0 {
			return nil, fmt.Errorf("trailing data after the %d data bytes (wrong dimensions?)", total)
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("after the data: %w", err)
		}
	}
}

func readErr(err error, what string, got, want int) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated: %s needs %d bytes, file has %d", what, want, got)
	}
	return fmt.Errorf("reading %s: %w", what, err)
}

func dimsPrefix(hdr []byte, nd int) []uint32 {
	d := make([]uint32, nd)
	for i := range d {
		d[i] = binary.BigEndian.Uint32(hdr[4*i:])
	}
	return d
}

func typeName(t byte) string {
	switch t {
	case 0x08:
		return "ubyte"
	case 0x09:
		return "sbyte"
	case 0x0B:
		return "int16"
	case 0x0C:
		return "int32"
	case 0x0D:
		return "float32"
	case 0x0E:
		return "float64"
	}
	return "unknown"
}

// ReadFile reads the IDX file at path (gzip-compressed or not).
func ReadFile(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("idx: %w", err)
	}
	defer f.Close()
	return Parse(path, f)
}

// AsImages checks that a is 3-D and views it as images. name is used in errors.
func AsImages(name string, a *Array) (*Images, error) {
	if len(a.Dims) != 3 {
		return nil, fmt.Errorf("idx: %s: images need 3 dimensions (count, rows, cols), file has %d: %v", name, len(a.Dims), a.Dims)
	}
	return &Images{N: a.Dims[0], Rows: a.Dims[1], Cols: a.Dims[2], Pix: a.Data}, nil
}

// AsLabels checks that a is 1-D and returns its values. name is used in errors.
func AsLabels(name string, a *Array) ([]byte, error) {
	if len(a.Dims) != 1 {
		return nil, fmt.Errorf("idx: %s: labels need 1 dimension, file has %d: %v", name, len(a.Dims), a.Dims)
	}
	return a.Data, nil
}

// ReadImages reads a 3-D IDX file of images.
func ReadImages(path string) (*Images, error) {
	a, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return AsImages(path, a)
}

// ReadLabels reads a 1-D IDX file of labels.
func ReadLabels(path string) ([]byte, error) {
	a, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return AsLabels(path, a)
}

// ReadImagesLabels reads an images file and its labels file and checks that
// they hold the same number of items.
func ReadImagesLabels(imagesPath, labelsPath string) (*Images, []byte, error) {
	im, err := ReadImages(imagesPath)
	if err != nil {
		return nil, nil, err
	}
	lab, err := ReadLabels(labelsPath)
	if err != nil {
		return nil, nil, err
	}
	if len(lab) != im.N {
		return nil, nil, fmt.Errorf("idx: dimension mismatch: %s has %d images but %s has %d labels", imagesPath, im.N, labelsPath, len(lab))
	}
	return im, lab, nil
}
