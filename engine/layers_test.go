package engine

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

func TestBatchNormTrainGradient(t *testing.T) {
	checkGrad(t, func(xs []*graph.Node) *graph.Node {
		y, _, _ := BatchNormTrain(xs[0], xs[1], xs[2], 1e-5)
		return y
	}, 1e-6, []int{4, 3, 3, 2}, []int{2}, []int{2})
}

func TestUpsampleGradient(t *testing.T) {
	checkGrad(t, func(xs []*graph.Node) *graph.Node { return Upsample2x(xs[0]) }, 1e-6, []int{2, 3, 4, 2})
}

func TestSpectralScaleGradient(t *testing.T) {
	checkGrad(t, func(xs []*graph.Node) *graph.Node {
		unit := func(x *graph.Node) *graph.Node { return graph.Div(x, graph.Sqrt(graph.ReduceAllSum(graph.Square(x)))) }
		return SpectralScale(xs[0], unit(xs[1]), unit(xs[2]))
	}, 1e-6, []int{3, 3, 2, 4}, []int{18}, []int{4})
}

// TestGradCheckCatchesWrongGradient makes sure the checker can fail: a
// gradient scaled by 1.01 must be reported.
func TestGradCheckCatchesWrongGradient(t *testing.T) {
	f := func(xs []*graph.Node) *graph.Node {
		y := graph.IdentityWithCustomGradient(xs[0], func(_, v *graph.Node) *graph.Node { return graph.MulScalar(v, 1.01) })
		return graph.ReduceAllSum(graph.Square(y))
	}
	errs, err := GradCheck(backend(t), f, [][]float64{{1, -2, 3}}, [][]int{{3}}, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] < 5e-3 {
		t.Fatalf("wrong gradient not caught: relative error %g", errs[0])
	}
}

func TestBatchNormMovingAverages(t *testing.T) {
	ctx := context.New()
	exec := context.MustNewExec(backend(t), ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
		return BatchNorm(ctx.In("bn"), x, true)
	})
	x := tensors.FromFlatDataAndDimensions([]float32{1, 10, 3, 20, 5, 30, 7, 40}, 4, 2)
	for i := 0; i < 60; i++ {
		exec.MustExec(x)
	}
	mean := tensors.MustCopyFlatData[float32](ctx.GetVariableByScopeAndName("/bn", "mean").MustValue())
	if d := mean[0] - 4; d*d > 1e-4 || (mean[1]-25)*(mean[1]-25) > 1e-2 {
		t.Fatalf("moving mean %v, want [4 25]", mean)
	}
}

// TestAdamLowersLoss fits a least-squares problem through Dense and Conv.
func TestAdamLowersLoss(t *testing.T) {
	ctx := context.New()
	opt := Adam{Name: "test", LR: 0.05}
	x := tensors.FromFlatDataAndDimensions(randVec32(8*4*4*2), 8, 4, 4, 2)
	target := tensors.FromFlatDataAndDimensions(randVec32(8*3), 8, 3)
	exec := context.MustNewExec(backend(t), ctx, func(ctx *context.Context, x, target *graph.Node) *graph.Node {
		m := ctx.In("model").Checked(false)
		h := Conv(m.In("conv"), x).Filters(4).Kernel(4).Stride(2).Pad(1).Done() // [8,2,2,4]
		y := Dense(m.In("dense"), graph.Reshape(h, 8, 16), 3, true)
		loss := graph.ReduceAllMean(graph.Square(graph.Sub(y, target)))
		opt.Minimize(ctx, loss, Variables(ctx, "/model"))
		return loss
	})
	first := tensors.ToScalar[float32](exec.MustExec(x, target)[0])
	var last float32
	for i := 0; i < 100; i++ {
		last = tensors.ToScalar[float32](exec.MustExec(x, target)[0])
	}
	if !(last < first*0.2) {
		t.Fatalf("loss %g → %g, want a fall of at least 5×", first, last)
	}
}

func TestNewBackendErrors(t *testing.T) {
	for _, tc := range []struct{ config, want string }{
		{"tpu", "unknown backend"},
		{"xla:cuda", "xla"}, // relative plugin: refused (or no XLA in this build)
	} {
		_, err := NewBackend(tc.config)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewBackend(%q) = %v, want error containing %q", tc.config, err, tc.want)
		}
	}
	t.Setenv(EnvBackend, "go")
	if b, err := NewBackend(""); err != nil || b.Name() == "" {
		t.Fatalf("NewBackend from env: %v", err)
	}
}

func saveSmall(t *testing.T) (string, *context.Context) {
	t.Helper()
	ctx := context.New()
	ctx.In("net").VariableWithValue("w", [][]float32{{1, 2}, {3, 4}})
	ctx.In("net").VariableWithValue("b", []float32{5, 6}).SetTrainable(false)
	path := filepath.Join(t.TempDir(), "ckpt.bin")
	if err := SaveCheckpoint(ctx, path, "", map[string]string{"step": "7"}); err != nil {
		t.Fatal(err)
	}
	return path, ctx
}

func TestCheckpointRoundTrip(t *testing.T) {
	path, _ := saveSmall(t)
	ctx := context.New()
	meta, err := LoadCheckpoint(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if meta["step"] != "7" {
		t.Errorf("meta %v", meta)
	}
	w := tensors.MustCopyFlatData[float32](ctx.GetVariableByScopeAndName("/net", "w").MustValue())
	if len(w) != 4 || w[3] != 4 {
		t.Fatalf("w = %v", w)
	}
}

func TestCheckpointRefusesBadFiles(t *testing.T) {
	path, _ := saveSmall(t)
	good, _ := os.ReadFile(path)
	cases := map[string]struct {
		data []byte
		want string
	}{
		"truncated": {good[:len(good)-10], "checksum"},
		"tiny":      {good[:5], "too short"},
		"flipped":   {append(append([]byte(nil), good[:40]...), append([]byte{good[40] ^ 0xff}, good[41:]...)...), "checksum"},
		"magic":     {append([]byte("NOTACKPT"), good[8:]...), "bad magic"},
		"version":   {append(append([]byte(nil), good[:8]...), append([]byte{9, 0, 0, 0}, good[12:]...)...), "version 9"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad.bin")
			os.WriteFile(p, tc.data, 0o644)
			ctx := context.New()
			_, err := LoadCheckpoint(ctx, p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("err = %v, want one naming %s and containing %q", err, p, tc.want)
			}
			if ctx.NumVariables() != 0 {
				t.Fatal("a refused checkpoint created variables")
			}
		})
	}
	// A model whose variable has another shape.
	ctx := context.New()
	ctx.In("net").VariableWithValue("w", []float32{1, 2, 3})
	_, err := LoadCheckpoint(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "/net/w") {
		t.Fatalf("shape mismatch: err = %v", err)
	}
	if _, err := LoadCheckpoint(context.New(), filepath.Join(t.TempDir(), "missing.bin")); err == nil {
		t.Fatal("missing file loaded")
	}
}

func TestLeakyReLUGradient(t *testing.T) {
	checkGrad(t, func(xs []*graph.Node) *graph.Node { return LeakyReLU(xs[0], 0.2) }, 1e-6, []int{3, 4, 5})
	// Inputs from randVec are never exactly 0, where LeakyReLU's subgradient
	// differs from the stock one.
}

func TestPixelNormGradient(t *testing.T) {
	checkGrad(t, func(xs []*graph.Node) *graph.Node {
		// Weighted, so that the gradient is not the trivial one of Σy.
		y := PixelNorm(xs[0], 1e-8)
		return graph.Mul(y, graph.Cos(graph.IotaFull(y.Graph(), y.Shape())))
	}, 1e-6, []int{3, 4, 5})
}

// valueAndGrad runs f on x and returns its value and the gradient of
// Σ f(x)·cos(i) (a weighted sum, so the gradient is not the trivial one).
func valueAndGrad(t *testing.T, x *tensors.Tensor, f func(*graph.Node) *graph.Node) (y, dx []float32) {
	t.Helper()
	exec := graph.MustNewExec(backend(t), func(x *graph.Node) []*graph.Node {
		out := f(x)
		w := graph.Cos(graph.IotaFull(x.Graph(), out.Shape()))
		return []*graph.Node{out, graph.Gradient(graph.ReduceAllSum(graph.Mul(out, w)), x)[0]}
	})
	res := exec.MustExec(x)
	return tensors.MustCopyFlatData[float32](res[0]), tensors.MustCopyFlatData[float32](res[1])
}

// TestPixelNormMatchesStock: value and gradient equal the chain rule's
// through the same formula.
func TestPixelNormMatchesStock(t *testing.T) {
	x := tensors.FromFlatDataAndDimensions(randVec32(2*3*4*8), 2, 3, 4, 8)
	custom := false
	y1, g1 := valueAndGrad(t, x, func(x *graph.Node) *graph.Node {
		y := PixelNorm(x, 1e-8)
		custom = y.CustomGradient() != nil
		return y
	})
	if !custom {
		t.Error("PixelNorm's own gradient is not set: the stock one ran")
	}
	y2, g2 := valueAndGrad(t, x, func(x *graph.Node) *graph.Node {
		ms := graph.ReduceAndKeep(graph.Square(x), graph.ReduceMean, -1)
		return graph.Mul(x, graph.Inverse(graph.Sqrt(graph.AddScalar(ms, 1e-8))))
	})
	for i := range y1 {
		if y1[i] != y2[i] || math.Abs(float64(g1[i]-g2[i])) > 1e-5*(1+math.Abs(float64(g2[i]))) {
			t.Fatalf("element %d: value %g vs %g, gradient %g vs %g", i, y1[i], y2[i], g1[i], g2[i])
		}
	}
}

// TestLeakyReLUMatchesMax: value and gradient equal graph.Max(x, 0.2x)'s.
func TestLeakyReLUMatchesMax(t *testing.T) {
	x := tensors.FromFlatDataAndDimensions(randVec32(2*3*4*5), 2, 3, 4, 5)
	y1, g1 := valueAndGrad(t, x, func(x *graph.Node) *graph.Node { return LeakyReLU(x, 0.2) })
	y2, g2 := valueAndGrad(t, x, func(x *graph.Node) *graph.Node { return graph.Max(x, graph.MulScalar(x, 0.2)) })
	for i := range y1 {
		if y1[i] != y2[i] || math.Abs(float64(g1[i]-g2[i])) > 1e-6 {
			t.Fatalf("element %d: value %g vs %g, gradient %g vs %g", i, y1[i], y2[i], g1[i], g2[i])
		}
	}
}
