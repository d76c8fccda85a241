package generator

import (
	"testing"

	"latentedit/engine"
	"latentedit/train/killtest"
)

// TestMain doubles as the training child of the kill tests.
func TestMain(m *testing.M) {
	killtest.Main(m, func(name, dir string) error {
		b, err := engine.NewBackend("")
		if err != nil {
			return err
		}
		_, err = Train(killCfg(name), Options{Out: dir, Backend: b})
		return err
	})
}
