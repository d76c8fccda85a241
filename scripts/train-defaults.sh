#!/usr/bin/env bash
# Trains the default models shipped in models/ with the project's own `train`
# command. Each run has a wall-clock cap (seconds); a run stopped by its cap
# keeps its last atomic checkpoint, whose step is recorded in model.json, so
# `--steps <that step>` reproduces it. Usage:
#   scripts/train-defaults.sh BIN OUTDIR [BACKEND] [CAP_PERCENT]
# e.g. on a GPU: scripts/train-defaults.sh ./latentedit runs xla:/abs/path/xla_cuda_plugin.so
set -u
bin=${1:?binary}; out=${2:?output dir}; backend=${3:-go}; scale=${4:-100}
mkdir -p "$out"
run() { # name cap args...
  local name=$1 cap=$(($2 * scale / 100)); shift 2
  echo "== $name (cap ${cap}s): $bin train $* --out $out/$name"
  timeout "$cap" "$bin" train "$@" --out "$out/$name" --backend "$backend" --json >"$out/$name.log" 2>&1
  echo "   exit $? ; $(tail -n 1 "$out/$name.log" | cut -c1-300)"
}
run faces-gan  170 --kind gan --data faces  --latent 64 --base 64 --batch 64 --data-n 30000 --steps 40000 --lr 2e-4 --seed 1 --sample-every 1000 --checkpoint-every 1000
run fundus-gan 150 --kind gan --data fundus --latent 64 --base 32 --batch 64 --data-n 20000 --steps 30000 --lr 2e-4 --seed 1 --sample-every 1000 --checkpoint-every 1000
run faces-vae   90 --kind vae --data faces  --latent 64 --base 32 --batch 64 --data-n 30000 --steps 20000 --lr 5e-4 --seed 1 --sample-every 1000 --checkpoint-every 1000
run mnist-gan   80 --kind gan --data mnist  --latent 64 --base 32 --batch 64 --data-n 60000 --steps 20000 --lr 2e-4 --seed 1 --sample-every 1000 --checkpoint-every 1000
