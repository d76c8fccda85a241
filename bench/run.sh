#!/usr/bin/env bash
# Times the default 32×32 GAN training step in latentedit (Go, GoMLX pure-Go
# backend) and in its PyTorch twin (bench/torch/gan.py), with the same number
# of threads, and prints the ratio ours/PyTorch. See bench/README.md.
#
#   bench/run.sh                 # 2 threads, 5 Go steps, 20 torch steps
#   THREADS=4 GO_STEPS=10 bench/run.sh
#
# Needs Debian's python3-torch (apt-get install -y python3-torch) under
# /usr/bin/python3 (override with PYTHON=...).
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-2}
GO_STEPS=${GO_STEPS:-5}
TORCH_STEPS=${TORCH_STEPS:-20}
PYTHON=${PYTHON:-/usr/bin/python3}
BENCH=${BENCH:-'GANStep32|GeneratorForward32'}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
[ -n "$cpu" ] || cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
echo "machine: nproc=$(nproc), cpu: ${cpu:-unknown}; threads used: $THREADS"
echo "go: $(go version | cut -d' ' -f3-), backend: ${GOMLX_BACKEND:-default (go:packgemm)}"

echo "== Go: GOMAXPROCS=$THREADS go test ./generator -run XXX -bench '$BENCH' -benchtime ${GO_STEPS}x"
GOMAXPROCS=$THREADS go test ./generator -run XXX -bench "$BENCH" -benchtime "${GO_STEPS}x" -timeout 60m | tee "$tmp/go.txt"

echo "== PyTorch: $PYTHON bench/torch/gan.py --threads $THREADS --steps $TORCH_STEPS"
"$PYTHON" bench/torch/gan.py --threads "$THREADS" --steps "$TORCH_STEPS" >"$tmp/torch.json" 2>"$tmp/torch.err" || {
	cat "$tmp/torch.err" >&2
	exit 1
}
cat "$tmp/torch.err" "$tmp/torch.json"

"$PYTHON" - "$tmp/go.txt" "$tmp/torch.json" "$THREADS" "$(nproc)" "$cpu" <<'EOF'
import json, re, sys
gotxt, tj, threads, nproc, cpu = sys.argv[1:6]
go = open(gotxt).read()
t = json.load(open(tj))
def ns(name):
    m = re.search(r"^Benchmark%s-\d+\s+\d+\s+([0-9.]+) ns/op" % name, go, re.M)
    return float(m.group(1)) / 1e6 if m else None
step = ns("GANStep32")
fwd = ns("GeneratorForward32")
m = re.search(r"params G=(\d+) D=(\d+)", go)
gG, gD = (int(m.group(1)), int(m.group(2))) if m else (None, None)
print("== Summary (threads %s, nproc %s, %s)" % (threads, nproc, cpu))
print("params  Go: G=%s D=%s   torch: G=%d D=%d   %s" % (gG, gD, t["params_G"], t["params_D"],
      "match" if (gG, gD) == (t["params_G"], t["params_D"]) else "MISMATCH"))
if step is None:
    sys.exit("no BenchmarkGANStep32 result in the Go output")
def metric(name, unit):
    m = re.search(r"^Benchmark%s-\d+\s.*?\s([0-9.]+) %s\b" % (name, re.escape(unit)), go, re.M)
    return float(m.group(1)) if m else None
print("GAN step     Go %10.1f ms   torch %s %8.1f ms   ratio ours/PyTorch %.1fx  (means)"
      % (step, t["torch"], t["ms_per_step"], step / t["ms_per_step"]))
for what, unit, key in (("median", "median-ms/step", "ms_per_step_median"), ("min", "min-ms/step", "ms_per_step_min")):
    v = metric("GANStep32", unit)
    if v is not None:
        print("GAN step     Go %10.1f ms   torch %s %8.1f ms   ratio ours/PyTorch %.1fx  (%ss)"
              % (v, t["torch"], t[key], v / t[key], what))
if fwd is not None and "gen_forward_ms" in t:
    print("G forward 64 Go %10.1f ms   torch %s %8.1f ms   ratio ours/PyTorch %.1fx"
          % (fwd, t["torch"], t["gen_forward_ms"], fwd / t["gen_forward_ms"]))
if (gG, gD) != (t["params_G"], t["params_D"]):
    sys.exit(1)
EOF
