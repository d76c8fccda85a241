package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.txt")
	if err := WriteFile(p, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "hello" {
		t.Fatalf("read %q %v", b, err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	if err := WriteFile(p, []byte("bye"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "bye" {
		t.Fatalf("overwrite gave %q", b)
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Fatalf("leftovers: %v", names)
	}
}

func TestWriteFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "new.bin")
	boom := errors.New("boom")
	err := Write(p, func(w io.Writer) error {
		w.Write(make([]byte, 1<<17)) // more than the buffer: some reaches the temp file
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	if names := listDir(t, dir); len(names) != 0 {
		t.Fatalf("failed write left %v", names)
	}
}

func TestWriteFailureKeepsPrevious(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "keep.txt")
	if err := Write(p, func(w io.Writer) error {
		_, err := io.WriteString(w, "original")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	err := Write(p, func(w io.Writer) error {
		io.WriteString(w, "partial")
		return errors.New("fail")
	})
	if err == nil {
		t.Fatal("no error")
	}
	if b, _ := os.ReadFile(p); string(b) != "original" {
		t.Fatalf("previous content changed to %q", b)
	}
	if names := listDir(t, dir); len(names) != 1 || names[0] != "keep.txt" {
		t.Fatalf("dir holds %v", names)
	}
}

func TestWritePanicCleansUp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "p.txt")
	func() {
		defer func() { recover() }()
		Write(p, func(w io.Writer) error { panic("oops") })
	}()
	if names := listDir(t, dir); len(names) != 0 {
		t.Fatalf("panic left %v", names)
	}
}

func TestWriteMissingDir(t *testing.T) {
	if err := WriteFile(filepath.Join(t.TempDir(), "no", "such", "f"), []byte("x"), 0o644); err == nil {
		t.Fatal("writing into a missing folder succeeded")
	}
}
