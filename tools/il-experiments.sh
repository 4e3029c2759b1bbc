#!/usr/bin/env bash
# The Push-T imitation-learning comparison of docs/il.md (CPU budget: minutes per run).
# Usage: bash tools/il-experiments.sh [OUT_DIR]   (default runs/il)
set -euo pipefail
export OPENBLAS_NUM_THREADS=1
OUT=${1:-runs/il}
EXE=${EXE:-./build/difftop}
DEMOS=$OUT/pusht-demos-s0.hdf5
mkdir -p "$OUT"
[ -f "$DEMOS" ] || $EXE demos --task pusht --episodes 200 --seed 0 --out "$DEMOS"
run() {  # name, then il-train arguments
  local name=$1; shift
  [ -f "$OUT/$name/eval.json" ] && return 0
  $EXE il-train --demos "$DEMOS" --out "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1
  tail -1 "$OUT/$name.log"
}
main() {  # BC, residual + BC, DiffTOP + BC for one training seed
  local s=$1
  run bc-s$s --policy bc --seed $s --epochs 100
  run residual-bc-s$s --policy residual --base "$OUT/bc-s$s" --seed $s --epochs 30
  run difftop-bc-s$s --policy difftop --base "$OUT/bc-s$s" --seed $s --epochs 30
}
main 1
run difftop-cvae-bc-s1 --policy difftop --base "$OUT/bc-s1" --seed 1 --epochs 15 cvae=1
for s in ${SEEDS:-2 3}; do main $s; done
run diffusion-s1 --policy diffusion --seed 1 --epochs 300
run difftop-diffusion-s1 --policy difftop --base "$OUT/diffusion-s1" --seed 1 --epochs 15
run residual-diffusion-s1 --policy residual --base "$OUT/diffusion-s1" --seed 1 --epochs 30
run difftop-zero-s1 --policy difftop --seed 1 --epochs 15 init=zero
run difftop-random-s1 --policy difftop --seed 1 --epochs 15 init=random
run difftop-bc-h3-s1 --policy difftop --base "$OUT/bc-s1" --seed 1 --epochs 15 horizon=3
run difftop-bc-h5-s1 --policy difftop --base "$OUT/bc-s1" --seed 1 --epochs 15 horizon=5
