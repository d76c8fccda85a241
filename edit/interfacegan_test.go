package edit

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ifgData draws n latents of dimension d and, for each true normal, a label
// column: sign(z·n + 0.1·noise) as 0/1, or z·n + 0.3·noise when continuous.
func ifgData(seed uint64, n, d int, normals [][]float64, continuous bool) (z, labels [][]float32) {
	r := rand.New(rand.NewPCG(seed, 7))
	z = cfGauss(r, n, d)
	labels = make([][]float32, n)
	for i := range z {
		labels[i] = make([]float32, len(normals))
		for j, nv := range normals {
			s := cfDot(cfF64(z[i]), nv)
			switch {
			case continuous:
				labels[i][j] = float32(s + 0.3*r.NormFloat64())
			case s+0.1*r.NormFloat64() > 0:
				labels[i][j] = 1
			}
		}
	}
	return z, labels
}

func TestInterFaceGANRecoversNormal(t *testing.T) {
	const n, d = 1500, 16
	nTrue := cfOrthonormalCols(rand.New(rand.NewPCG(8, 8)), d, 1)
	for _, tc := range []struct {
		name       string
		solver     string
		continuous bool
	}{
		{"logistic binary", "", false},
		{"logistic continuous", "logistic", true},
		{"svm binary", "svm", false},
		{"svm continuous", "svm", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z, labels := ifgData(9, n, d, nTrue, tc.continuous)
			l, err := NewInterFaceGAN(z, labels, []string{"smile"}, InterFaceGANOptions{Solver: tc.solver}, cfBackend(t))
			if err != nil {
				t.Fatal(err)
			}
			dir := cfDirections(t, l)[0]
			c := cfCos(dir, nTrue[0])
			p := l.Params()
			acc := p["accuracy"].(map[string]any)["smile"].(float64)
			t.Logf("%s: cos with the true normal %.5f, training accuracy %.4f on %v samples (%v)",
				tc.name, c, acc, p["n_labelled"].(map[string]any)["smile"], p["kind"].(map[string]any)["smile"])
			if c < 0.95 {
				t.Fatalf("cos = %v", c)
			}
			if acc < 0.9 {
				t.Fatalf("accuracy %v", acc)
			}
			wantKind, wantN := "binary", n
			if tc.continuous {
				wantKind, wantN = "continuous", 2*int(0.3*n)
			}
			if p["kind"].(map[string]any)["smile"] != wantKind || p["n_labelled"].(map[string]any)["smile"] != wantN {
				t.Fatalf("kind %v n_labelled %v", p["kind"], p["n_labelled"])
			}
			if l.Names()[0] != "smile" || l.Method() != "interfacegan" {
				t.Fatalf("names %v method %s", l.Names(), l.Method())
			}
		})
	}
}

func TestInterFaceGANConditional(t *testing.T) {
	const n, d = 1500, 12
	r := rand.New(rand.NewPCG(10, 10))
	basis := cfOrthonormalCols(r, d, 3)
	nA := basis[0]
	nB := make([]float64, d) // cos(nA, nB) = 0.6
	nC := make([]float64, d) // cos(nA, nC) = 0.3
	for i := range nB {
		nB[i] = 0.6*basis[0][i] + 0.8*basis[1][i]
		nC[i] = 0.3*basis[0][i] + 0.954*basis[2][i]
	}
	z, labels := ifgData(11, n, d, [][]float64{nA, nB, nC}, false)
	opt := InterFaceGANOptions{Condition: map[string][]string{"smile": {"pitch"}, "yaw": {"smile", "pitch"}}}
	l, err := NewInterFaceGAN(z, labels, []string{"smile", "pitch", "yaw"}, opt, cfBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"smile", "pitch", "yaw", "smile|pitch", "yaw|smile,pitch"}
	if got := l.Names(); len(got) != len(want) {
		t.Fatalf("names %v, want %v", got, want)
	} else {
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("names %v, want %v", got, want)
			}
		}
	}
	dirs := cfDirections(t, l)
	acc := l.Params()["accuracy"].(map[string]any)
	for j, truth := range [][]float64{nA, nB, nC} {
		c := cfCos(dirs[j], truth)
		t.Logf("%s: cos with the true normal %.5f, accuracy %.4f", want[j], c, acc[want[j]])
		if c < 0.95 || acc[want[j]].(float64) < 0.9 {
			t.Fatalf("%s: cos %v accuracy %v", want[j], c, acc[want[j]])
		}
	}
	// smile|pitch: orthogonal to the fitted pitch normal, still along smile.
	sp := cfF64(dirs[3])
	dB := cfDot(sp, cfF64(dirs[1]))
	dA := cfDot(sp, cfF64(dirs[0]))
	t.Logf("smile|pitch: dot with pitch %.3g, with smile %.4f, with true smile %.4f", dB, dA, cfCos(dirs[3], nA))
	if math.Abs(dB) > 1e-6 || dA <= 0 || cfCos(dirs[3], nA) <= 0 {
		t.Fatalf("smile|pitch: dot with pitch %v, with smile %v", dB, dA)
	}
	// Expected: the smile normal minus its pitch component, renormalised.
	a, b := cfF64(dirs[0]), cfF64(dirs[1])
	cfAxpy(-cfDot(a, b), b, a)
	if c := cfCos(dirs[3], a); c < 1-1e-6 {
		t.Fatalf("smile|pitch is not the projected smile normal: cos %v", c)
	}
	yc := cfF64(dirs[4])
	ds, dp, dy := cfDot(yc, cfF64(dirs[0])), cfDot(yc, cfF64(dirs[1])), cfDot(yc, cfF64(dirs[2]))
	t.Logf("yaw|smile,pitch: dot with smile %.3g, pitch %.3g, yaw %.4f", ds, dp, dy)
	if math.Abs(ds) > 1e-6 || math.Abs(dp) > 1e-6 || dy <= 0 {
		t.Fatalf("yaw|smile,pitch: dots %v %v %v", ds, dp, dy)
	}
	// Moving along smile|pitch leaves the pitch score unchanged to first order.
	moved, err := One(l, z[0], 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	before, after := cfDot(cfF64(z[0]), b), cfDot(cfF64(moved), b)
	if math.Abs(after-before) > 1e-5 {
		t.Fatalf("pitch score moved from %v to %v", before, after)
	}
	cfRoundTrip(t, l)
}

func TestInterFaceGANDeterministic(t *testing.T) {
	nTrue := cfOrthonormalCols(rand.New(rand.NewPCG(12, 12)), 8, 1)
	z, labels := ifgData(13, 400, 8, nTrue, false)
	for _, solver := range []string{"logistic", "svm"} {
		var first [][]float32
		for rep := 0; rep < 2; rep++ {
			l, err := NewInterFaceGAN(z, labels, []string{"a"}, InterFaceGANOptions{Solver: solver}, cfBackend(t))
			if err != nil {
				t.Fatal(err)
			}
			dirs := cfDirections(t, l)
			if rep == 0 {
				first = dirs
				continue
			}
			for i := range dirs[0] {
				if dirs[0][i] != first[0][i] {
					t.Fatalf("%s: two fits of the same data differ", solver)
				}
			}
		}
	}
}

func TestInterFaceGANErrors(t *testing.T) {
	be := cfBackend(t)
	nTrue := cfOrthonormalCols(rand.New(rand.NewPCG(14, 14)), 4, 2)
	z, labels := ifgData(15, 100, 4, nTrue, false)
	names := []string{"a", "b"}
	cases := []struct {
		name   string
		z, lab [][]float32
		names  []string
		opt    InterFaceGANOptions
		want   string
	}{
		{"empty z", nil, labels, names, InterFaceGANOptions{}, "z is empty"},
		{"empty labels", z, nil, names, InterFaceGANOptions{}, "labels is empty"},
		{"rows", z, labels[:99], names, InterFaceGANOptions{}, "100 latents but 99 label rows"},
		{"names", z, labels, names[:1], InterFaceGANOptions{}, "1 factor names for 2 label columns"},
		{"duplicate", z, labels, []string{"a", "a"}, InterFaceGANOptions{}, `"a" appears twice`},
		{"bar", z, labels, []string{"a|b", "c"}, InterFaceGANOptions{}, "free of '|'"},
		{"solver", z, labels, names, InterFaceGANOptions{Solver: "tree"}, `unknown solver "tree"`},
		{"l2", z, labels, names, InterFaceGANOptions{L2: -1}, "L2 -1 must be positive"},
		{"ratio", z, labels, names, InterFaceGANOptions{Ratio: 0.7}, "Ratio 0.7"},
		{"unknown condition", z, labels, names, InterFaceGANOptions{Condition: map[string][]string{"a": {"pitch"}}}, `conditioned on unknown factor "pitch"`},
		{"unknown primary", z, labels, names, InterFaceGANOptions{Condition: map[string][]string{"pitch": {"a"}}}, `condition on unknown factor "pitch"`},
		{"self", z, labels, names, InterFaceGANOptions{Condition: map[string][]string{"a": {"a"}}}, "conditioned on itself"},
		{"empty condition", z, labels, names, InterFaceGANOptions{Condition: map[string][]string{"a": {}}}, "names no factor"},
		{"too many", z, labels, names, InterFaceGANOptions{Condition: map[string][]string{"a": {"b"}, "b": {"a"}}}, "exceed the latent dimension 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			zz := tc.z
			if tc.name == "too many" {
				zz = make([][]float32, len(z))
				for i := range z {
					zz[i] = z[i][:3]
				}
			}
			_, err := NewInterFaceGAN(zz, tc.lab, tc.names, tc.opt, be)
			cfWantErr(t, err, tc.want)
		})
	}
	_, err := NewInterFaceGAN(z, labels, names, InterFaceGANOptions{}, nil)
	cfWantErr(t, err, "no backend")

	nan := make([][]float32, len(labels))
	for i := range labels {
		nan[i] = append([]float32(nil), labels[i]...)
	}
	nan[5][1] = float32(math.NaN())
	_, err = NewInterFaceGAN(z, nan, names, InterFaceGANOptions{}, be)
	cfWantErr(t, err, "labels[5][1] is NaN")

	ones := make([][]float32, len(z))
	for i := range ones {
		ones[i] = []float32{1, labels[i][1]}
	}
	_, err = NewInterFaceGAN(z, ones, names, InterFaceGANOptions{}, be)
	cfWantErr(t, err, `factor "a": binary labels are all 1`)

	flat := make([][]float32, len(z))
	for i := range flat {
		flat[i] = []float32{0.5, labels[i][1]}
	}
	_, err = NewInterFaceGAN(z, flat, names, InterFaceGANOptions{}, be)
	cfWantErr(t, err, "barely varies")

	// Latents that are all equal say nothing about the labels.
	same := make([][]float32, 4)
	for i := range same {
		same[i] = []float32{1, 1}
	}
	_, err = NewInterFaceGAN(same, [][]float32{{0, 1}, {1, 0}, {0, 1}, {1, 0}}, names, InterFaceGANOptions{}, be)
	cfWantErr(t, err, "no usable normal")

	// A condition spanning the primary: b's labels are a's.
	dup := make([][]float32, len(labels))
	for i := range labels {
		dup[i] = []float32{labels[i][0], labels[i][0]}
	}
	_, err = NewInterFaceGAN(z, dup, names, InterFaceGANOptions{Condition: map[string][]string{"a": {"b"}}}, be)
	cfWantErr(t, err, "nothing is left after conditioning")
}
