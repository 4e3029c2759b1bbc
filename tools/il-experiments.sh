#!/usr/bin/env bash
# The Push-T imitation-learning comparison of docs/il.md (CPU budget: minutes per run).
# Usage: bash tools/il-experiments.sh [OUT_DIR]   (default runs/il; finished runs are skipped)
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
  echo "$name: $(tail -1 "$OUT/$name.log")"
}
main() {  # BC, residual + BC, DiffTOP + BC for one training seed
  local s=$1
  run bc-s$s --policy bc --seed $s --epochs 100
  run residual-bc-s$s --policy residual --base "$OUT/bc-s$s" --seed $s --epochs 30
  run difftop-bc-s$s --policy difftop --base "$OUT/bc-s$s" --seed $s --epochs 30
}
extra() {  # diffusion family, initialisation ablation, CVAE for one training seed
  local s=$1
  run diffusion-s$s --policy diffusion --seed $s --epochs 300
  run difftop-diffusion-s$s --policy difftop --base "$OUT/diffusion-s$s" --seed $s --epochs 15
  run residual-diffusion-s$s --policy residual --base "$OUT/diffusion-s$s" --seed $s --epochs 30
  run difftop-zero-s$s --policy difftop --seed $s --epochs 15 init=zero
  run difftop-random-s$s --policy difftop --seed $s --epochs 15 init=random
  run difftop-cvae-bc-s$s --policy difftop --base "$OUT/bc-s$s" --seed $s --epochs 15 cvae=1
}
main 1
run difftop-cvae-bc-s1 --policy difftop --base "$OUT/bc-s1" --seed 1 --epochs 15 cvae=1
for s in 2 3; do main $s; done
extra 1
# planning-horizon ablation (Table 6), seed 1 only: H = 3 and 5 cost 5x and 8x an H = 1 step
run difftop-bc-h3-s1 --policy difftop --base "$OUT/bc-s1" --seed 1 --epochs 15 horizon=3
run difftop-bc-h5-s1 --policy difftop --base "$OUT/bc-s1" --seed 1 --epochs 15 horizon=5
# the H = 1 reference at the same 15 epochs
run difftop-bc-e15-s1 --policy difftop --base "$OUT/bc-s1" --seed 1 --epochs 15
for s in 2 3; do extra $s; done
# a CVAE with a 30x weaker KL term and more epochs, for the multimodal-objective figure
run difftop-cvae-kl1e-4-bc-s1 --policy difftop --base "$OUT/bc-s1" --seed 1 --epochs 30 cvae=1 kl_weight=1e-4
