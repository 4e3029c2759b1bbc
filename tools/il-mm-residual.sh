#!/usr/bin/env bash
# Residual + BC against CVAE DiffTOP + BC on the multimodal Push-T demos (docs/il.md section 6),
# fixed before it ran:
#   - data: `difftop demos --task pusht --multimodal --episodes 200 --seed 0` (the section's file);
#   - BC 100 epochs (as in section 6), training seeds 1, 2, 3;
#   - Residual + BC: 10 epochs on the BC of the same seed (the epochs of CVAE DiffTOP + BC there);
#   - CVAE DiffTOP + BC (beta 1e-4, 10 epochs) retrained with the section's command, so that all
#     three rows come from one build;
#   - evaluation: 50 upstream test seeds (100000..), 300 steps.
# Claim tested (paper: DiffTOP beats residual learning; App. E: the CVAE is what lets DiffTOP
# represent multimodal demonstrations, which a residual MLP trained with MSE cannot): mean score
# of CVAE DiffTOP + BC above Residual + BC's over seeds 1-3.
# Usage: bash tools/il-mm-residual.sh [OUT_DIR]   (default runs/il-mm; finished runs are skipped)
set -euo pipefail
export OPENBLAS_NUM_THREADS=1
OUT=${1:-runs/il-mm}
EXE=${EXE:-./build/difftop}
DEMOS=$OUT/pusht-mm-s0.hdf5
mkdir -p "$OUT"
[ -f "$DEMOS" ] || $EXE demos --task pusht --multimodal --episodes 200 --seed 0 --out "$DEMOS" > "$OUT/demos.log" 2>&1
train() {  # name, then il-train arguments
  local name=$1; shift
  [ -f "$OUT/$name/model.safetensors" ] || $EXE il-train --threads 1 --demos "$DEMOS" --out "$OUT/$name" \
    --eval-episodes 0 "$@" > "$OUT/$name.log" 2>&1
}
evaluate() {
  [ -f "$OUT/$1/eval.txt" ] || $EXE il-eval "$OUT/$1" --threads 1 --episodes 50 --seed 100000 > "$OUT/$1/eval.txt" 2>&1
  echo "$1: $(tail -1 "$OUT/$1/eval.txt")"
}
for s in 1 2 3; do
  train bc-s$s --policy bc --seed $s --epochs 100
  train residual-bc-s$s --policy residual --base "$OUT/bc-s$s" --seed $s --epochs 10
  train cvae-bc-s$s --policy difftop --base "$OUT/bc-s$s" --seed $s --epochs 10 cvae=1 kl_weight=1e-4
  for r in bc residual-bc cvae-bc; do evaluate $r-s$s; done
done
