#!/usr/bin/env bash
# The main job from a clean Debian machine with Go: installs the native CPU
# kernels (oneDNN, OpenBLAS, gcc for cgo) if they are missing, downloads the
# Go modules, then runs `latentedit demo` (arguments are passed on, e.g.
# --serve). If the packages cannot be installed it still runs, slower.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/packages.sh
need=()
need_kernels
install_needed || echo "could not install ${need[*]}: running on the pure-Go kernels (slower)" >&2
go mod download
exec go run ./cmd/latentedit demo "$@"
