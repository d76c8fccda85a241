package kernels

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego"
)

var (
	testOnce    sync.Once
	testBackend backends.Backend
	testErr     error
)

// backend is the pure-Go backend configured as engine.NewBackend configures
// it (engine.DefaultCPU's options through GoOptions).
func backend(t testing.TB) backends.Backend {
	t.Helper()
	testOnce.Do(func() { testBackend, testErr = backends.NewWithConfig("go:" + GoOptions("packgemm")) })
	if testErr != nil {
		t.Fatal(testErr)
	}
	return testBackend
}

// randVec32 is n standard-normal values, the same for the same n.
func randVec32(n int) []float32 {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// prod is the number of elements of a shape.
func prod(d []int) int {
	n := 1
	for _, x := range d {
		n *= x
	}
	return n
}
