//go:build xla

package discover

// The discovery step of every trainable method, built for XLA (the GPU
// backend) on the shipped faces GAN, on machines without a PJRT plugin:
// engine.XLAGraphOnly runs every op through XLA's StableHLO builder and keeps
// the program. `go test -tags xla -run XLA` (scripts/test.sh runs it).

import (
	"strings"
	"testing"

	"latentedit/edit"
	"latentedit/engine"
	"latentedit/generator"
	"latentedit/models"
)

func TestDiscoveryStepBuildsOnXLA(t *testing.T) {
	be, err := engine.NewXLAGraphOnly()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := models.Extract("faces-gan", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cpu, err := engine.NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"linear", "warped", "curvilinear", "potential"} {
		t.Run(method, func(t *testing.T) {
			// A fresh model per method: New adds the editor's variables to its context.
			loaded, err := generator.Load(dir, cpu)
			if err != nil {
				t.Fatal(err)
			}
			m := loaded.On(be)
			cfg := Default(method)
			cfg.Batch = 8
			tr, err := New(m, cfg)
			if err != nil {
				t.Fatal(err)
			}
			z, onehot, eps := tr.sample(0, 0)
			progs, err := be.Build(func() error { return tr.step.PreCompile(z, onehot, eps) })
			if err != nil {
				t.Fatalf("discovery step does not build for XLA: %v", err)
			}
			if len(progs) != 1 {
				t.Fatalf("want one program, got %d", len(progs))
			}
			for name, p := range progs {
				args, err := engine.MainArgs(p)
				if err != nil {
					t.Fatal(err)
				}
				// The frozen generator is read, the editor and R are read
				// and updated; three inputs (z, one-hot k, ε).
				var nG, nEdit, nR, nIn int
				for _, a := range args {
					switch {
					case strings.HasPrefix(a, "%var__generator_"):
						nG++
					case strings.HasPrefix(a, "%var__"+strings.TrimPrefix(edit.Scope, "/")):
						nEdit++
					case strings.HasPrefix(a, "%var__"+strings.TrimPrefix(reconScope, "/")):
						nR++
					case strings.HasPrefix(a, "%arg"):
						nIn++
					}
				}
				if nG == 0 || nEdit == 0 || nR == 0 || nIn != 3 {
					t.Errorf("%s: main reads %d generator, %d editor, %d reconstructor variables and %d inputs; want >0, >0, >0, 3:\n%v", name, nG, nEdit, nR, nIn, args)
				}
				if !strings.Contains(p, "stablehlo.dot_general") {
					t.Errorf("%s: no matmul in the program", name)
				}
				t.Logf("%s: %d KB of StableHLO; reads %d generator, %d editor, %d reconstructor variables", method, len(p)>>10, nG, nEdit, nR)
			}
			// The evaluation graph (RCA) builds too.
			if _, err := be.Build(func() error { return tr.eval.PreCompile(z, onehot, eps) }); err != nil {
				t.Fatalf("RCA graph does not build for XLA: %v", err)
			}
		})
	}
}
