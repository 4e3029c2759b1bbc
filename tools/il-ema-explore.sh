#!/usr/bin/env bash
# Exploratory, one training seed (session 7; docs/il.md section 5): does diffusion_policy's
# training recipe (weight EMA, cosine learning rate, warm-up) lift our diffusion policy?
# Seed 4, 300 epochs each, the demos of tools/il-confirm-diffusion.sh; every run is then scored
# with sample seeds 0-4 (il-eval --sample-seeds 5). The plain recipe is
# runs/il-confirm/diffusion-e300-s4, re-scored the same way by tools/il-reeval.sh.
# Usage: bash tools/il-ema-explore.sh [DEMOS_DIR] [OUT_DIR]  (defaults runs/il-confirm, runs/il-ema)
set -euo pipefail
export OPENBLAS_NUM_THREADS=1
EXE=${EXE:-./build/difftop}
DEMOS=${1:-runs/il-confirm}/pusht-demos-s0.hdf5
OUT=${2:-runs/il-ema}
mkdir -p "$OUT"
[ -f "$DEMOS" ] || $EXE demos --task pusht --episodes 200 --seed 0 --out "$DEMOS"
run() {  # name, then il-train overrides
  local name=$1; shift
  [ -f "$OUT/$name/eval.json" ] || $EXE il-train --threads 1 --demos "$DEMOS" --out "$OUT/$name" \
    --policy diffusion --seed 4 --epochs 300 "$@" > "$OUT/$name.log" 2>&1
  echo "$name: $($EXE il-eval "$OUT/$name" --threads 1 --sample-seeds 5 | tail -1)"
}
run ema-s4 ema=1
run ema-cos-s4 ema=1 lr_schedule=cosine warmup_steps=500
run upstream-s4 ema=1 lr_schedule=cosine warmup_steps=500 lr=1e-4
