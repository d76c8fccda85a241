package edit

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"gonum.org/v1/gonum/mat"
)

// NewSeFa is closed-form factorization (Shen & Zhou 2021). w is the weight
// matrix of the generator's first layer with one row per latent dimension
// (d × F: the layer computes z·W, so A = Wᵀ maps z to features). Moving z by
// n changes the features by A·n, and ‖A·n‖² = nᵀ W Wᵀ n, so the
// directions that change the first layer most are the top-k eigenvectors of
// W·Wᵀ (d × d), in decreasing eigenvalue order, each with its sign fixed so
// that its largest-magnitude component is positive. Needs 1 ≤ k ≤ d and
// k ≤ rank W.
//
// The reference implementation normalises each column of W (each feature's
// weights) to unit norm before factorizing; a caller who wants that passes
// the normalised matrix. The first layer's bias does not matter.
//
// Params: "eigenvalues" (the k largest eigenvalues of W·Wᵀ, decreasing) and
// "eigenvalue_ratio" (each over their total, the trace). Directions are named
// "sefa 0" … "sefa k-1".
func NewSeFa(w [][]float32, k int, be backends.Backend) (*Linear, error) {
	const method = "sefa"
	x, err := cfMatrix(method, "w", w)
	if err != nil {
		return nil, err
	}
	d, _ := x.Dims()
	switch {
	case be == nil:
		return nil, fmt.Errorf("edit: %s: no backend", method)
	case k < 1 || k > d:
		return nil, fmt.Errorf("edit: %s: k = %d must be in [1, %d] (the latent dimension, the rows of w)", method, k, d)
	}
	var g mat.SymDense
	g.SymOuterK(1, x) // W Wᵀ
	trace := 0.0
	for i := 0; i < d; i++ {
		trace += g.At(i, i)
	}
	vals, vecs, err := cfEigTop(method, &g, k)
	if err != nil {
		return nil, err
	}
	ratio, err := cfRatios(method, vals, trace, k)
	if err != nil {
		return nil, fmt.Errorf("%w (the rank of w)", err)
	}
	dirs := make([][]float32, k)
	for j := range dirs {
		dirs[j] = cfFloat32(cfFixSign(mat.Col(nil, j, vecs)))
	}
	params := Options{"eigenvalues": vals, "eigenvalue_ratio": ratio}
	return cfLinear(method, dirs, params, cfNames("sefa", k), be)
}
