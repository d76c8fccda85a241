package evaluate

import (
	"fmt"
	"slices"
)

// PrecisionRecall is the improved precision and recall of Kynkäänniemi et
// al. 2019 ("Improved Precision and Recall Metric for Assessing Generative
// Models"), with the feature vectors given (rows are images).
//
// Each set stands for a manifold: the union of balls centred on its points,
// each ball's radius the distance from its point to its k-th nearest other
// point of the same set. Then
//
//	precision = the fraction of fake points inside the real manifold
//	            (how many samples look like some real image: fidelity);
//	recall    = the fraction of real points inside the fake manifold
//	            (how much of the data the samples reach: diversity).
//
// A point on a ball's surface counts as inside, as in the paper's code. The
// distances are computed by brute force (O(n²·d)), exact, and cheap at the
// thousand-image sets and the ten-odd oracle dimensions used here. The
// radii grow as n falls, so two values compare only at the same n and k;
// Quality reports the real-vs-real values beside them for that reason.
func PrecisionRecall(real, fake [][]float64, k int) (precision, recall float64, err error) {
	if k < 1 || len(real) <= k || len(fake) <= k {
		return 0, 0, fmt.Errorf("precision/recall: need k ≥ 1 and more than k points per set, got k %d, %d real, %d fake", k, len(real), len(fake))
	}
	d := len(real[0])
	for _, set := range [][][]float64{real, fake} {
		for i, x := range set {
			if len(x) != d || d == 0 {
				return 0, 0, fmt.Errorf("precision/recall: point %d has %d values, want %d (> 0)", i, len(x), d)
			}
		}
	}
	precision = covered(fake, real, kthRadii(real, k))
	recall = covered(real, fake, kthRadii(fake, k))
	return precision, recall, nil
}

// kthRadii returns, for every point of x, the squared distance to its k-th
// nearest other point of x.
func kthRadii(x [][]float64, k int) []float64 {
	out := make([]float64, len(x))
	d := make([]float64, 0, len(x)-1)
	for i := range x {
		d = d[:0]
		for j := range x {
			if j != i {
				d = append(d, sqDist(x[i], x[j]))
			}
		}
		slices.Sort(d)
		out[i] = d[k-1]
	}
	return out
}

// covered is the fraction of points inside at least one ball of manifold
// (centres, squared radii).
func covered(points, centres [][]float64, radii []float64) float64 {
	in := 0
	for _, p := range points {
		for j, c := range centres {
			if sqDist(p, c) <= radii[j] {
				in++
				break
			}
		}
	}
	return float64(in) / float64(len(points))
}

func sqDist(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return s
}
