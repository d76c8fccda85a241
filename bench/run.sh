#!/usr/bin/env bash
# Times latentedit's CPU training steps (GAN, VAE, reconstructor, discovery,
# style GAN and its lazy R1 step) (Go, GoMLX pure-Go backend with engine's
# fast kernels) and their PyTorch twins, with the same number of threads, in
# one go, and prints per step the ratio ours/PyTorch and the peak memory of
# each side. See bench/README.md.
#
#   bench/run.sh                          # 2 threads, 5 Go steps, 20 torch steps, all six steps
#   STEPS="gan discovery" GO_STEPS=10 bench/run.sh
#   STEPS="style style-r1" bench/run.sh   # the style GAN, and its amortised step (main + R1/16)
#   LATENTEDIT_CPU_KERNELS=stock bench/run.sh   # GoMLX's own executors, for comparison
#
# Needs Debian's python3-torch under /usr/bin/python3 (override with PYTHON=...).
# Every benchmark runs in its own process, so that its peak RSS is its own.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-2}
GO_STEPS=${GO_STEPS:-5}
TORCH_STEPS=${TORCH_STEPS:-20}
PYTHON=${PYTHON:-/usr/bin/python3}
STEPS=${STEPS:-gan vae reconstructor discovery style style-r1}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
[ -n "$cpu" ] || cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
echo "machine: nproc=$(nproc), cpu: ${cpu:-unknown}, $(free -g | awk '/^Mem:/{print $2}') GiB; threads used: $THREADS"
echo "go: $(go version | cut -d' ' -f3-), backend: ${GOMLX_BACKEND:-default (go:packgemm)}, kernels: ${LATENTEDIT_CPU_KERNELS:-fast}"

# Compile the test binaries first: compilation is not what is measured.
go test -c -o "$tmp/generator.test" ./generator
go test -c -o "$tmp/discover.test" ./discover

for step in $STEPS; do
	case $step in
	gan) bin=generator bench=GANStep32 torch=(bench/torch/gan.py --forward 0) ;;
	vae) bin=generator bench=VAEStep32 torch=(bench/torch/vae.py) ;;
	reconstructor) bin=discover bench=ReconstructorStep torch=(bench/torch/discover.py --step reconstructor) ;;
	discovery) bin=discover bench=DiscoveryStep torch=(bench/torch/discover.py --step discovery) ;;
	style) bin=generator bench=StyleGANStep64 torch=(bench/torch/stylegan.py) ;;
	style-r1) bin=generator bench=StyleR1Step64 torch=(bench/torch/stylegan.py --r1) ;;
	*) echo "unknown step $step (gan, vae, reconstructor, discovery, style, style-r1)" >&2; exit 2 ;;
	esac
	echo "== $step, Go: GOMAXPROCS=$THREADS $bin.test -test.bench '^Benchmark$bench\$' -test.benchtime ${GO_STEPS}x"
	(cd "$bin" && GOMAXPROCS=$THREADS "$tmp/$bin.test" -test.run XXX -test.bench "^Benchmark$bench\$" \
		-test.benchtime "${GO_STEPS}x" -test.timeout 60m) | tee "$tmp/go_$step.txt"
	echo "== $step, PyTorch: $PYTHON ${torch[*]} --threads $THREADS --steps $TORCH_STEPS"
	"$PYTHON" "${torch[@]}" --threads "$THREADS" --steps "$TORCH_STEPS" >"$tmp/torch_$step.json" 2>"$tmp/torch_$step.err" || {
		cat "$tmp/torch_$step.err" >&2
		exit 1
	}
	cat "$tmp/torch_$step.err" "$tmp/torch_$step.json"
done

"$PYTHON" - "$tmp" "$THREADS" "$(nproc)" "$cpu" $STEPS <<'PY'
import json, re, sys
tmp, threads, nproc, cpu, steps = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
bench = {"gan": "GANStep32", "vae": "VAEStep32", "reconstructor": "ReconstructorStep", "discovery": "DiscoveryStep",
         "style": "StyleGANStep64", "style-r1": "StyleR1Step64"}
print("== Summary: batch 64, %s threads each (nproc %s, %s)" % (threads, nproc, cpu))
print("%-14s %10s %10s %8s %8s %8s %12s %12s  %s" % ("step", "ours ms", "torch ms", "mean", "median", "min",
      "ours peak MB", "torch peak MB", "params"))
bad = False
med = {}  # step: (ours, torch) medians, for the style GAN's amortised step
for step in steps:
    go = open("%s/go_%s.txt" % (tmp, step)).read()
    t = json.load(open("%s/torch_%s.json" % (tmp, step)))
    line = re.search(r"^Benchmark%s-\d+\s+\d+\s+(.*)$" % bench[step], go, re.M)
    if not line:
        print("%-14s no Go result" % step)
        bad = True
        continue
    metrics = {unit: float(v) for v, unit in re.findall(r"([0-9.e+]+) (\S+)", line.group(1))}
    mean, mdn, mn = metrics["ns/op"] / 1e6, metrics["median-ms/step"], metrics["min-ms/step"]
    med[step] = (mdn, t["ms_per_step_median"])
    if step in ("gan", "style"):
        ours_p = {"G": int(metrics["G-params"]), "D": int(metrics["D-params"])}
        torch_p = {"G": t["params_G"], "D": t["params_D"]}
    elif step == "style-r1":  # D alone: the R1 step does not touch G
        ours_p = {"D": int(metrics["D-params"])}
        torch_p = {"D": t["params_D"]}
    else:
        ours_p = {k[:-len("-params")]: int(v) for k, v in metrics.items() if k.endswith("-params")}
        torch_p = t["params"]
    match = ours_p == torch_p
    bad |= not match
    print("%-14s %10.1f %10.1f %7.2fx %7.2fx %7.2fx %12.0f %12.0f  %s %s" % (
        step, mdn, t["ms_per_step_median"], mean / t["ms_per_step"], mdn / t["ms_per_step_median"],
        mn / t["ms_per_step_min"], metrics.get("peak-RSS-MB", float("nan")), t["peak_rss_mb"],
        " ".join("%s=%d" % kv for kv in sorted(ours_p.items())), "match" if match else "MISMATCH torch %s" % torch_p))
if "style" in med and "style-r1" in med:
    # A training step of the style GAN: the main step, and every 16th step the R1 step too.
    ours = med["style"][0] + med["style-r1"][0] / 16
    theirs = med["style"][1] + med["style-r1"][1] / 16
    print("%-14s %10.1f %10.1f %8s %7.2fx  (main + R1/16, medians)" % ("style+r1/16", ours, theirs, "", ours / theirs))
print("ratios are ours/PyTorch of the mean, median and minimum step times; ms columns are medians")
sys.exit(1 if bad else 0)
PY
