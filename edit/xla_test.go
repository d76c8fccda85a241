//go:build xla

package edit

// The float64 edit graphs of the path editors, built for XLA (the GPU
// backend) through its StableHLO builder, on machines without a PJRT plugin
// (engine.XLAGraphOnly): `go test -tags xla -run XLA` (scripts/test.sh runs it).

import (
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
)

func TestEditGraphBuildsOnXLA(t *testing.T) {
	be, err := engine.NewXLAGraphOnly()
	if err != nil {
		t.Fatal(err)
	}
	const k, d = 3, 16
	for _, method := range []string{"warped", "potential"} {
		t.Run(method, func(t *testing.T) {
			e := newTestEditor(t, method, k, d, nil)
			if _, err := One(e, make([]float32, d), 0, 1); err != nil { // the variables get values (on the CPU)
				t.Fatal(err)
			}
			// The graph EditBatch builds, from the editor's own walk.
			walk := e.(interface {
				editWalk(ctx *context.Context, z, onehot, h, n, done *graph.Node) *graph.Node
			}).editWalk
			row := func() *tensors.Tensor {
				return tensors.FromFlatDataAndDimensions(make([]float64, editChunk), editChunk)
			}
			progs, err := be.Build(func() error {
				exec, err := context.NewExec(be, e.(interface{ Context() *context.Context }).Context(), walk)
				if err != nil {
					return err
				}
				return exec.PreCompile(tensors.FromFlatDataAndDimensions(make([]float64, editChunk*d), editChunk, d),
					tensors.FromFlatDataAndDimensions(make([]float64, editChunk*k), editChunk, k), row(), row(), row())
			})
			if err != nil {
				t.Fatalf("the %s edit graph does not build for XLA: %v", method, err)
			}
			if len(progs) != 1 {
				t.Fatalf("want one program, got %d", len(progs))
			}
			for name, p := range progs {
				args, err := engine.MainArgs(p)
				if err != nil {
					t.Fatal(err)
				}
				// z, the one-hot and three rows in float64; the editor's
				// variables read in float32 and widened in the graph.
				var in64, var32 int
				for _, a := range args {
					switch {
					case strings.HasPrefix(a, "%arg") && strings.Contains(a, "xf64>"):
						in64++
					case strings.HasPrefix(a, "%var__") && strings.Contains(a, "xf32>"):
						var32++
					}
				}
				if in64 != 5 || var32 == 0 || !strings.Contains(p, "stablehlo.convert") {
					t.Errorf("%s: %d float64 inputs, %d float32 variables (want 5 and > 0, converted):\n%v", name, in64, var32, args)
				}
			}
		})
	}
}
