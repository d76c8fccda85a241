//go:build xla

package generator

// The training and sampling graphs built for XLA (the GPU backend), on
// machines without a PJRT plugin: engine.XLAGraphOnly runs every op through
// XLA's StableHLO builder and keeps the program. `go test -tags xla -run XLA`
// (scripts/test.sh runs it).

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
)

// xlaVarArgs returns main's variable arguments as "/scope/name shape",
// sorted, and its other arguments' types.
func xlaVarArgs(t *testing.T, program string) (vars, inputs []string) {
	t.Helper()
	args, err := engine.MainArgs(program)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range args {
		name, typ, ok := strings.Cut(a, ": ")
		if !ok {
			t.Fatalf("argument %q has no type", a)
		}
		if v, ok := strings.CutPrefix(name, "%var_"); ok {
			vars = append(vars, strings.ReplaceAll(v, "_", "/")+" "+typ)
		} else {
			inputs = append(inputs, typ)
		}
	}
	sort.Strings(vars)
	return vars, inputs
}

// xlaName is how the XLA backend names a variable's argument: "_" for
// every "/", "." and "_"; we compare with "/" for all three.
var xlaName = strings.NewReplacer("_", "/", ".", "/")

// ctxVars returns the context's variables in xlaVarArgs's form.
func ctxVars(ctx *context.Context) []string {
	var vs []string
	for v := range ctx.IterVariables() {
		d := v.Shape().Dimensions
		parts := make([]string, len(d))
		for i, n := range d {
			parts[i] = fmt.Sprint(n)
		}
		typ := "tensor<" + strings.Join(append(parts, "f32"), "x") + ">"
		vs = append(vs, xlaName.Replace(v.ScopeAndName())+" "+typ)
	}
	sort.Strings(vs)
	return vs
}

func TestTrainingStepsBuildOnXLA(t *testing.T) {
	for _, kind := range []string{"gan", "vae"} {
		t.Run(kind, func(t *testing.T) {
			be, err := engine.NewXLAGraphOnly()
			if err != nil {
				t.Fatal(err)
			}
			cfg := Default(kind, "xla")
			cfg.Size, cfg.Channels, cfg.Batch = 32, 3, 8
			arch, err := NewArch(cfg.Size, cfg.Channels, cfg.Base, cfg.Latent)
			if err != nil {
				t.Fatal(err)
			}
			tr := &trainer{cfg: cfg, opt: Options{Backend: be}, arch: arch, ctx: context.New().Checked(false)}
			if err := tr.build(); err != nil {
				t.Fatal(err)
			}
			x := tensors.FromShape(shapes.Make(dtypes.Float32, cfg.Batch, cfg.Size, cfg.Size, cfg.Channels))
			noise := []int{cfg.Batch, cfg.Latent}
			progs, err := be.Build(func() error {
				return tr.step.PreCompile(x, tensors.FromShape(shapes.Make(dtypes.Float32, noise...)))
			})
			if err != nil {
				t.Fatalf("training step does not build for XLA: %v", err)
			}
			if len(progs) != 1 {
				t.Fatalf("want one program, got %d", len(progs))
			}
			for name, p := range progs {
				vars, inputs := xlaVarArgs(t, p)
				// The step reads every variable the CPU step reads: the
				// networks, Adam's moments and step, EMA, spectral-norm vectors.
				if want := ctxVars(tr.ctx); strings.Join(vars, "\n") != strings.Join(want, "\n") {
					t.Errorf("%s: the program's variables differ from the context's:\nprogram %d: %v\ncontext %d: %v", name, len(vars), vars, len(want), want)
				}
				wantIn := []string{"tensor<8x32x32x3xf32>", "tensor<8x64xf32>"}
				if strings.Join(inputs, ",") != strings.Join(wantIn, ",") {
					t.Errorf("%s: inputs %v, want %v", name, inputs, wantIn)
				}
				// Convolutions are im2col and matmuls off the CPU backend.
				for _, op := range []string{"stablehlo.dot_general", "stablehlo.tanh", "stablehlo.reduce"} {
					if !strings.Contains(p, op) {
						t.Errorf("%s: no %s in the program", name, op)
					}
				}
				t.Logf("%s: %d KB of StableHLO, %d variables, %d matmuls", name, len(p)>>10, len(vars), strings.Count(p, "stablehlo.dot_general"))
			}
			// Sampling builds too (EMA weights for the GAN, the decoder for the VAE).
			if _, err := be.Build(func() error {
				return tr.sample.PreCompile(tensors.FromShape(shapes.Make(dtypes.Float32, 4, cfg.Latent)))
			}); err != nil {
				t.Fatalf("sampling does not build for XLA: %v", err)
			}
		})
	}
}
