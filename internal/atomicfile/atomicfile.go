// Package atomicfile writes files atomically: the content goes to a temporary
// file in the same folder, which is flushed to disk and then renamed over the
// destination. Readers see either the old file or the complete new one, and a
// failed or interrupted write leaves the old file untouched and no temporary
// file behind.
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// DefaultPerm is the mode of files created by Write.
const DefaultPerm os.FileMode = 0o644

// WriteFile writes data to path atomically with permissions perm (applied
// exactly, without the umask).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write calls fn with a buffered writer and atomically replaces path with what
// fn wrote, with mode DefaultPerm. If fn returns an error (or panics) nothing is
// changed and fn's error is returned.
func Write(path string, fn func(io.Writer) error) error {
	return write(path, DefaultPerm, fn)
}

func write(path string, perm os.FileMode, fn func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	tmp := f.Name()
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(tmp)
		}
	}()

	bw := bufio.NewWriterSize(f, 1<<16)
	if err := fn(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("atomicfile: writing %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: syncing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: closing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	committed = true
	syncDir(dir)
	return nil
}

// syncDir makes the rename durable where the system supports syncing a
// folder; errors are ignored since the file itself is already complete.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}
