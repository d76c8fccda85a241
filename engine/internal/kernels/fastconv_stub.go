//go:build !cgo || noblas

package kernels

import "time"

// Without cgo (or with -tags noblas) convolutions are im2col and a matmul on
// every backend; see fastconv.go for the oneDNN path.
var fastConv struct {
	installed bool
	reason    string
}

// ConvInstalled reports whether oneDNN runs the convolutions: never here.
func ConvInstalled() bool { return false }

// ConvTime is the wall time spent in oneDNN convolutions: none in this build.
func ConvTime() time.Duration { return 0 }
