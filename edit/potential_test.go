package edit

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"latentedit/engine"
)

func newTestPotential(t *testing.T, k, d int, opt Options) *Potential {
	t.Helper()
	return newTestEditor(t, "potential", k, d, opt).(*Potential)
}

// potentialProbe evaluates, in float64 with the editor's weights, the
// potential u_k(z, τ), one Euler step of size 1 minus z (that is ∇_z u_k(z, τ),
// through potentialWalk, the code EditBatch runs) and the wave residual.
type potentialProbe struct {
	t    *testing.T
	p    *Potential
	exec *context.Exec
}

func newPotentialProbe(t *testing.T, p *Potential) *potentialProbe {
	t.Helper()
	exec, err := context.NewExec(p.be, p.ctx, func(ctx *context.Context, z, onehot, tau *graph.Node) []*graph.Node {
		q := potentialSelect(onehot, p.params(ctx, z.Graph(), dtypes.Float64))
		one := graph.OnesLike(tau)
		out, _ := potentialWalk(z, one, one, tau, q, 1) // τ = done·|h| = tau
		u, _, res := potentialField(z, tau, q)
		return []*graph.Node{u, graph.Sub(out, z), res}
	})
	if err != nil {
		t.Fatal(err)
	}
	return &potentialProbe{t, p, exec}
}

// at returns u, ∇u and the residual at one point.
func (pp *potentialProbe) at(z []float64, k int, tau float64) (float64, []float64, float64) {
	pp.t.Helper()
	oh := make([]float64, pp.p.k)
	oh[k] = 1
	var out []*tensors.Tensor
	err := engine.Safe("probe", func() error {
		var err error
		out, err = pp.exec.Exec(tensors.FromFlatDataAndDimensions(z, 1, len(z)), tensors.FromFlatDataAndDimensions(oh, 1, pp.p.k), []float64{tau})
		return err
	})
	if err != nil {
		pp.t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float64](out[0])[0], tensors.MustCopyFlatData[float64](out[1]), tensors.MustCopyFlatData[float64](out[2])[0]
}

func shifted(z []float64, i int, by float64) []float64 {
	y := slices.Clone(z)
	y[i] += by
	return y
}

// TestPotentialFieldDerivatives: the step is exactly the gradient of a
// scalar potential (central differences of u_k), and the wave residual's
// ∂²u/∂τ² and Laplacian match second differences of u_k.
func TestPotentialFieldDerivatives(t *testing.T) {
	const k, d, hDiff = 3, 12, 1e-4
	p := newTestPotential(t, k, d, Options{"hidden": 16})
	// c ≠ 1, so a residual that forgot c² fails.
	setVar(t, p, "c", []float32{1.5, 0.7, 1.2})
	pp := newPotentialProbe(t, p)
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 3 {
		z := make([]float64, d)
		for i := range z {
			z[i] = r.NormFloat64()
		}
		kk, tau := trial%k, 3*r.Float64()
		u, grad, res := pp.at(z, kk, tau)
		worst, scale, lap := 0.0, 0.0, 0.0
		for i := range z {
			up, _, _ := pp.at(shifted(z, i, hDiff), kk, tau)
			um, _, _ := pp.at(shifted(z, i, -hDiff), kk, tau)
			worst = max(worst, math.Abs((up-um)/(2*hDiff)-grad[i]))
			scale = max(scale, math.Abs(grad[i]))
			lap += (up - 2*u + um) / (hDiff * hDiff)
		}
		if !(worst <= 1e-7*max(scale, 1)) {
			t.Errorf("trial %d: step differs from the finite-difference gradient of u by %.3g (|∇u|∞ %.3g)", trial, worst, scale)
		}
		const hT = 1e-3
		tp, _, _ := pp.at(z, kk, tau+hT)
		tm, _, _ := pp.at(z, kk, tau-hT)
		utt := (tp - 2*u + tm) / (hT * hT)
		c := []float64{1.5, 0.7, 1.2}[kk]
		want := utt - c*c*lap
		if !(math.Abs(want-res) <= 1e-4*max(math.Abs(utt)+c*c*math.Abs(lap), 1e-3)) {
			t.Errorf("trial %d: residual %.6g, finite differences give %.6g (u_ττ %.3g, Δu %.3g)", trial, res, want, utt, lap)
		}
		t.Logf("trial %d: ∇u error %.2g; residual %.5g vs %.5g", trial, worst, res, want)
	}
}

// TestPotentialCurlFree: the velocity field's Jacobian (central differences
// of the step) is symmetric, as the Hessian of a potential must be.
func TestPotentialCurlFree(t *testing.T) {
	const k, d, h = 2, 10, 1e-5
	p := newTestPotential(t, k, d, Options{"hidden": 16})
	pp := newPotentialProbe(t, p)
	r := rand.New(rand.NewPCG(7, 8))
	z := make([]float64, d)
	for i := range z {
		z[i] = r.NormFloat64()
	}
	jac := make([][]float64, d) // jac[j][i] = ∂v_i/∂z_j
	for j := range d {
		_, vp, _ := pp.at(shifted(z, j, h), 1, 0.7)
		_, vm, _ := pp.at(shifted(z, j, -h), 1, 0.7)
		jac[j] = make([]float64, d)
		for i := range d {
			jac[j][i] = (vp[i] - vm[i]) / (2 * h)
		}
	}
	asym, norm := 0.0, 0.0
	for i := range d {
		for j := range d {
			asym += (jac[i][j] - jac[j][i]) * (jac[i][j] - jac[j][i])
			norm += jac[i][j] * jac[i][j]
		}
	}
	rel := math.Sqrt(asym / norm)
	t.Logf("‖J − Jᵀ‖/‖J‖ = %.2g, ‖J‖ = %.3g", rel, math.Sqrt(norm))
	if !(rel <= 1e-7) || norm == 0 {
		t.Errorf("velocity Jacobian not symmetric: ‖J − Jᵀ‖/‖J‖ = %.3g (‖J‖² %.3g)", rel, norm)
	}
}

// TestPotentialEditConvention: t = 0 is the identity; one Euler step of
// size t is z + t·∇u(z, 0), and −t is z − t·∇u(z, 0); a long edit (more
// steps than the graph unrolls) equals the same Euler walk taken by hand;
// and a save/load round trip gives the same bits.
func TestPotentialEditConvention(t *testing.T) {
	const k, d = 3, 8
	p := newTestPotential(t, k, d, Options{"hidden": 16, "step": 0.5})
	pp := newPotentialProbe(t, p)
	r := rand.New(rand.NewPCG(9, 10))
	z := randLatent(r, d)
	z64 := make([]float64, d)
	for i, v := range z {
		z64[i] = float64(v)
	}
	same, err := One(p, z, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(same, z) {
		t.Errorf("t = 0 moved the latent: %v → %v", z, same)
	}
	_, g0, _ := pp.at(z64, 2, 0)
	for _, tt := range []float32{0.4, -0.4} {
		out, err := One(p, z, 2, tt)
		if err != nil {
			t.Fatal(err)
		}
		for i := range z {
			if want := z64[i] + float64(tt)*g0[i]; math.Abs(float64(out[i])-want) > 1e-5 {
				t.Fatalf("t = %v: coordinate %d is %v, want z + t·∇u = %v", tt, i, out[i], want)
			}
		}
	}
	// 7.5 = 15 steps of 0.5: beyond the 12 the edit graph unrolls.
	walk := slices.Clone(z64)
	for j := range 15 {
		_, g, _ := pp.at(walk, 0, 0.5*float64(j))
		for i := range walk {
			walk[i] += 0.5 * g[i]
		}
	}
	long, err := One(p, z, 0, 7.5)
	if err != nil {
		t.Fatal(err)
	}
	for i := range z {
		if math.Abs(float64(long[i])-walk[i]) > 1e-4 {
			t.Fatalf("t = 7.5: coordinate %d is %v, the Euler walk gives %v", i, long[i], walk[i])
		}
	}
	dir := filepath.Join(t.TempDir(), "potential")
	if err := Save(dir, p, nil); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir, SpaceZ, d, edTestBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	again, err := One(back, z, 0, 7.5)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again, long) {
		t.Errorf("after save/load the edit is %v, before %v", again, long)
	}
}

// TestPotentialOptions: bad options are refused by name.
func TestPotentialOptions(t *testing.T) {
	for _, s := range []string{"hidden=1.5", "hiden=3", "step=x", "pde_weight=nan", "ic_weight=inf"} {
		if _, err := ParseOptions("potential", s); err == nil {
			t.Errorf("ParseOptions(%q) accepted", s)
		}
	}
	for _, o := range []Options{{"hidden": 0}, {"step": 0.0}, {"pde_weight": -1.0}, {"ic_weight": -0.5},
		{"init_scale": 0.0}, {"timesteps": -1}, {"timesteps": 1001}, {"hidden": 2.5}} {
		if _, err := New("potential", 2, 4, o, nil, edTestBackend(t)); err == nil {
			t.Errorf("New(potential, %v) accepted", o)
		}
	}
	if err := ValidateOptions("potential", Options{"hidden": 8, "ic_weight": 0.1}); err != nil {
		t.Error(err)
	}
}

// setVar sets a float32 variable of the potential editor.
func setVar(t *testing.T, p *Potential, name string, vals []float32) {
	t.Helper()
	if err := p.ctx.InitializeVariables(p.be, nil); err != nil {
		t.Fatal(err)
	}
	v := p.ctx.InAbsPath(potentialScope).GetVariableByScopeAndName(potentialScope, name)
	if v == nil {
		t.Fatalf("no variable %s", name)
	}
	if err := v.SetValue(tensors.FromFlatDataAndDimensions(vals, len(vals))); err != nil {
		t.Fatal(err)
	}
}

// TestPotentialWalkGradient checks the training walk's gradient (the moved
// latent and the wave residual) with respect to z, every parameter of the
// potentials and the step sizes, in float64: what Adam gets is right.
func TestPotentialWalkGradient(t *testing.T) {
	const b, k, h, d = 3, 2, 4, 5
	randn := randnFunc(rand.New(rand.NewPCG(3, 4)))
	inputs := [][]float64{randn(b*d, 0, 1), randn(k*h*d, 0, 0.5), randn(k*h, 0, 0.3), randn(k*h, 0, 0.1),
		randn(k*h, 0, 0.7), randn(k, 1, 0.2), randn(b, 0, 0.4)}
	dims := [][]int{{b, d}, {k, h, d}, {k, h}, {k, h}, {k, h}, {k}, {b}}
	gradCheck(t, "potential walk (z, w, p, b, v, c, h)", func(xs []*graph.Node) *graph.Node {
		g := xs[0].Graph()
		oh := graph.Const(g, [][]float64{{0, 1}, {1, 0}, {0, 1}})
		q := potentialSelect(oh, potentialParams{w: xs[1], p: xs[2], b: xs[3], v: xs[4], c: xs[5]})
		n := graph.Const(g, []float64{3, 1, 2})
		out, res := potentialWalk(xs[0], xs[6], n, graph.ZerosLike(n), q, 3)
		return graph.Add(projection(out), res)
	}, inputs, dims)
}
