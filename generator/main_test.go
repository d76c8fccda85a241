package generator

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"latentedit/engine"
)

// TestMain doubles as the training child of TestKillAndResume: with
// LATENTEDIT_TRAIN_CHILD set it trains the given config and exits, to be
// killed midway by the parent.
func TestMain(m *testing.M) {
	if raw := os.Getenv("LATENTEDIT_TRAIN_CHILD"); raw != "" {
		var cfg Config
		if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		b, err := engine.NewBackend("")
		if err == nil {
			_, err = Train(cfg, Options{Out: os.Getenv("LATENTEDIT_TRAIN_OUT"), Backend: b})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func flatFloats(t *tensors.Tensor) []float64 {
	switch t.DType() {
	case dtypes.Float32:
		v := tensors.MustCopyFlatData[float32](t)
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	case dtypes.Float64:
		return tensors.MustCopyFlatData[float64](t)
	}
	return nil // RNG state and other integer variables are compared by the float ones they drive
}
