//go:build xla

package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// A convolution and its gradient build for XLA as im2col and matmuls (the
// oneDNN ConvGeneral node is for the pure-Go backend only), and the
// program's main takes the inputs with their shapes.
func TestXLAGraphOnlyBuildsConvAndGradient(t *testing.T) {
	be, err := NewXLAGraphOnly()
	if err != nil {
		t.Fatal(err)
	}
	exec, err := graph.NewExec(be, func(x, k *graph.Node) []*graph.Node {
		y := Conv2D(x, k, 2, 1)
		loss := graph.ReduceAllSum(graph.Square(y))
		return append([]*graph.Node{loss}, graph.Gradient(loss, x, k)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	progs, err := be.Build(func() error {
		return exec.PreCompile(tensors.FromShape(shapesF32(2, 8, 8, 3)), tensors.FromShape(shapesF32(4, 4, 3, 5)))
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(progs) != 1 {
		t.Fatalf("want 1 program, got %d", len(progs))
	}
	for _, p := range progs {
		args, err := MainArgs(p)
		if err != nil {
			t.Fatal(err)
		}
		want := "%arg0: tensor<2x8x8x3xf32>,%arg1: tensor<4x4x3x5xf32>"
		if got := strings.Join(args, ","); got != want {
			t.Errorf("main's arguments %q, want %q", got, want)
		}
		if strings.Contains(p, "stablehlo.convolution") || !strings.Contains(p, "stablehlo.dot_general") {
			t.Errorf("want the convolution as im2col and matmuls on XLA")
		}
		if n := strings.Count(p, "stablehlo.dot_general"); n < 3 {
			t.Errorf("%d matmuls; want the forward one and two in the gradient", n)
		}
	}
}

// Build passes on failures that are not the expected "nothing compiled",
// including a shape error panicked while the graph is built.
func TestXLAGraphOnlyReportsRealFailures(t *testing.T) {
	be, err := NewXLAGraphOnly()
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if _, err := be.Build(func() error { return boom }); !errors.Is(err, boom) {
		t.Errorf("fn's error: got %v", err)
	}
	exec, err := graph.NewExec(be, func(x, k *graph.Node) *graph.Node {
		return Conv2D(x, k, 1, 1) // kernel has 4 input channels, x 3
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = be.Build(func() error {
		return exec.PreCompile(tensors.FromShape(shapesF32(1, 8, 8, 3)), tensors.FromShape(shapesF32(3, 3, 4, 5)))
	})
	if err == nil || errors.Is(err, ErrGraphOnly) || !strings.Contains(err.Error(), "input channels") {
		t.Errorf("a shape error must fail the build, got %v", err)
	}
	if _, err := be.Build(func() error { return nil }); err == nil {
		t.Error("a build that compiles nothing must fail")
	}
}
