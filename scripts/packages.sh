# Sourced by demo.sh and test.sh: installs the Debian packages listed in
# the array `need` (nothing when it is empty), as root or through sudo.
install_needed() {
  [ ${#need[@]} -gt 0 ] || return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
}

# The native CPU kernels: engine/blas_cgo.go opens oneDNN (and OpenBLAS) at
# run time through cgo, so it needs a C compiler at build time and the
# libraries at run time. Without them everything still runs, on the
# pure-Go kernels, several times slower.
need_kernels() {
  command -v gcc >/dev/null || need+=(gcc libc6-dev)
  # grep reads to the end (no -q): under pipefail, -q would close the pipe early and
  # ldconfig's SIGPIPE would read as "missing", reinstalling on every run.
  ldconfig -p 2>/dev/null | grep 'libdnnl\.so\.2' >/dev/null || need+=(libdnnl2)
  ldconfig -p 2>/dev/null | grep 'libopenblas\.so\.0' >/dev/null || need+=(libopenblas0)
}
