package generator

import (
	"testing"

	"latentedit/engine"
	"latentedit/train/killtest"
)

// TestMain doubles as the training child of TestKillAndResume.
func TestMain(m *testing.M) {
	killtest.Main(m, func(_, dir string) error {
		b, err := engine.NewBackend("")
		if err != nil {
			return err
		}
		_, err = Train(killCfg(), Options{Out: dir, Backend: b})
		return err
	})
}
