// Package killtest is the one kill-and-resume test every trainer runs: start
// the trainer in a child process (the test binary itself), SIGKILL it right
// after a checkpoint and before the end, resume it here, and require the same
// state, bit for bit, as an uninterrupted run. Only tests import it.
package killtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"latentedit/engine"
	"latentedit/train"
)

const (
	envChild = "LATENTEDIT_KILLTEST_CHILD" // the test whose child this process is
	envDir   = "LATENTEDIT_KILLTEST_DIR"   // the child's run directory
)

// Main is TestMain's body in a package with kill tests: in a child process
// it runs child (the trainer of kill test name, from scratch, into dir) and
// exits; in the parent it runs the tests.
func Main(m *testing.M, child func(name, dir string) error) {
	if name := os.Getenv(envChild); name != "" {
		if err := child(name, os.Getenv(envDir)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Run is the test. full and killed are two empty run directories, state the
// path of the state file inside them (train.StateFile usually); train runs
// the trainer into dir (resuming when resume is set) in this process; the
// child (Main's child function, given t.Name()) must train the same run. It kills the child
// once its state reaches a step in [1, steps), resumes into killed and
// compares the state files of killed and full, which must hold the same
// variables with the same bytes. It returns the step the child was killed at.
func Run(t *testing.T, steps int, full, killed, state string, train func(dir string, resume bool) error) int {
	t.Helper()
	if err := train(full, false); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^"+t.Name()+"$")
	cmd.Env = append(os.Environ(), envChild+"="+t.Name(), envDir+"="+killed)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	step := waitForCheckpoint(filepath.Join(killed, state), 2*time.Minute)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if step < 1 || step >= steps {
		t.Fatalf("the child reached step %d before the kill; want a kill mid-run (child stderr: %s)", step, stderr.String())
	}
	t.Logf("killed after the checkpoint of step %d", step)
	if err := train(killed, true); err != nil {
		t.Fatal(err)
	}
	if err := SameState(filepath.Join(full, state), filepath.Join(killed, state)); err != nil {
		t.Fatal(err)
	}
	return step
}

func waitForCheckpoint(path string, limit time.Duration) int {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if s, err := train.StateStep(path); err == nil && s > 0 {
			return s
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0
}

// SameState compares two state files variable by variable, byte for byte,
// and names every variable that differs.
func SameState(a, b string) error {
	va, ma, err := engine.ReadCheckpoint(a)
	if err != nil {
		return err
	}
	vb, mb, err := engine.ReadCheckpoint(b)
	if err != nil {
		return err
	}
	if ma["step"] != mb["step"] {
		return fmt.Errorf("states at steps %s and %s", ma["step"], mb["step"])
	}
	var names []string
	for n := range va {
		names = append(names, n)
	}
	for n := range vb {
		if _, ok := va[n]; !ok {
			return fmt.Errorf("variable %s only in %s", n, b)
		}
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		tb, ok := vb[n]
		if !ok {
			return fmt.Errorf("variable %s only in %s", n, a)
		}
		var x, y []byte
		va[n].ConstBytes(func(d []byte) { x = append(x, d...) })
		tb.ConstBytes(func(d []byte) { y = append(y, d...) })
		if !va[n].Shape().Equal(tb.Shape()) || !bytes.Equal(x, y) {
			errs = append(errs, fmt.Errorf("variable %s differs between %s and %s", n, a, b))
		}
	}
	return errors.Join(errs...)
}
