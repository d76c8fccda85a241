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
# interop's tests build generators in Debian's PyTorch and compare images
# with it (they fail, not skip, without it); /usr/bin first, as the tests do.
/usr/bin/python3 -c 'import torch' 2>/dev/null || need+=(python3-torch)
need_kernels
install_needed
go mod download
go vet ./...
# -count=1: most packages run graphs through the native kernels (oneDNN,
# OpenBLAS), and a cached "ok" would hide a flaky crash (docs/engine.md).
go test -count=1 -timeout 40m ./...
# oneDNN picks its implementations by CPU: run the engine's tests again with
# the gemm-based convolutions every x86 CPU gets under SSE41, and with AVX2's.
DNNL_MAX_CPU_ISA=SSE41 go test -count=1 ./engine/...
DNNL_MAX_CPU_ISA=AVX2 go test -count=1 ./engine/...
# The pure-Go fallback, as a machine without a C compiler builds it.
CGO_ENABLED=0 go vet ./engine/...
CGO_ENABLED=0 go test -count=1 ./engine/...
# Imported generators and exported editors against PyTorch, on the pure-Go fallback too.
CGO_ENABLED=0 go test -count=1 -run 'TestImportMatchesPyTorch|TestImportStyleMatchesPyTorch|TestExportMatchesPyTorch|TestImportStyleGAN2Range|TestImportONNXMatchesPyTorch' ./interop/
# The same training steps (and the float64 edit walks) built for XLA (the GPU backend) through its StableHLO
# builder; no PJRT plugin is needed or downloaded (engine/xla_graphonly.go).
CGO_ENABLED=1 go vet -tags xla ./engine ./generator ./discover ./edit
CGO_ENABLED=1 go test -count=1 -tags xla -run XLA ./engine ./generator ./discover ./edit
