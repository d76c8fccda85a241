#!/usr/bin/env bash
# Runs the tests of the packages that train through the native kernels
# (engine, generator, discover) RUNS times in a row, with BUSY CPU-busy loops
# beside them, and counts the runs that failed and those that crashed (a
# signal: the oneDNN thread-affinity crash showed up only under load, see
# docs/engine.md). Extra environment passes through, e.g.
#
#   scripts/stress-kernels.sh 30 2
#   DNNL_MAX_CPU_ISA=SSE41 scripts/stress-kernels.sh 30 2
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
busy=${2:-2}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
for _ in $(seq "$busy"); do
	(while :; do :; done) &
	pids+=($!)
done
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
isa=$(grep -o -w -m1 -E 'avx512f|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')
echo "cpu: ${cpu:-unknown} (nproc $(nproc), flags: ${isa:-none of avx2/avx512f}); DNNL_MAX_CPU_ISA=${DNNL_MAX_CPU_ISA:-unset}; $busy busy loops"
go test -count=1 -run XXX ./engine/... ./generator ./discover >/dev/null # compile once
failed=0
crashed=0
log=$(mktemp)
for i in $(seq "$runs"); do
	t0=$(date +%s)
	if go test -count=1 ./engine/... ./generator ./discover >"$log" 2>&1; then
		echo "run $i: ok ($(($(date +%s) - t0)) s)"
	else
		failed=$((failed + 1))
		if grep -q -E 'signal: |SIGSEGV|SIGABRT|fatal error' "$log"; then
			crashed=$((crashed + 1))
		fi
		echo "run $i: FAILED ($(($(date +%s) - t0)) s)"
		grep -E '^(FAIL|---|signal|panic|fatal)|SIG' "$log" | head -20
	fi
done
rm -f "$log"
echo "summary: $runs runs, $failed failed, $crashed crashed"
[ "$failed" = 0 ]
