#!/usr/bin/env bash
# The test suite, from a clean Debian machine with Go: installs the Debian
# packages the tests read (Fashion-MNIST) or drive (chromium), downloads the Go modules (MNIST
# ships inside one), then vets and tests everything. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/packages.sh
need=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
# The server's browser test drives Debian's chromium (it fails, not skips, without it).
command -v chromium >/dev/null || need+=(chromium)
need_kernels
install_needed
go mod download
go vet ./...
go test -timeout 40m ./...
# The same training steps built for XLA (the GPU backend) through its StableHLO
# builder; no PJRT plugin is needed or downloaded (engine/xla_graphonly.go).
CGO_ENABLED=1 go vet -tags xla ./engine ./generator ./discover
CGO_ENABLED=1 go test -tags xla -run XLA ./engine ./generator ./discover
