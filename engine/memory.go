package engine

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// PeakRSS returns the process's peak resident memory in bytes (VmHWM of
// /proc/self/status; Linux only): what the benchmarks report as a step's
// peak memory, beside the PyTorch twin's ru_maxrss.
func PeakRSS() (int64, error) { return procStatusKB("VmHWM") }

// RSS returns the process's resident memory now, in bytes (VmRSS; Linux only).
func RSS() (int64, error) { return procStatusKB("VmRSS") }

// procStatusKB reads one "Field: N kB" line of /proc/self/status, in bytes.
func procStatusKB(field string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %q: %w", field, v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}
