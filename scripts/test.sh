#!/usr/bin/env bash
# The test suite, from a clean Debian machine with Go: installs the Debian
# packages the tests read (Fashion-MNIST) or drive (chromium), downloads the Go modules (MNIST
# ships inside one), then vets and tests everything. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
# The server's browser test drives Debian's chromium (it fails, not skips, without it).
command -v chromium >/dev/null || need+=(chromium)
# oneDNN and OpenBLAS: the CPU backend's matmuls (engine/blas_cgo.go opens them at run time).
ldconfig -p 2>/dev/null | grep -q 'libdnnl\.so\.2' || need+=(libdnnl2)
ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so\.0' || need+=(libopenblas0)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
go mod download
go vet ./...
go test -timeout 40m ./...
