#!/usr/bin/env bash
# Confirmatory run of docs/il.md section 4 ("DiffTOP + Diffusion >= Diffusion"), fixed before it
# ran: fresh training seeds 4, 5, 6; the sensitivity run's settings (diffusion 300 epochs, then
# DiffTOP on it for 5 epochs); the claim holds if DiffTOP + Diffusion's mean score is above
# Diffusion's. Usage: bash tools/il-confirm-diffusion.sh [OUT_DIR]   (default runs/il-confirm;
# finished runs are skipped). EXE picks the binary (default ./build/difftop).
set -euo pipefail
OUT=${1:-runs/il-confirm}
EXE=${EXE:-./build/difftop}
DEMOS=$OUT/pusht-demos-s0.hdf5
mkdir -p "$OUT"
[ -f "$DEMOS" ] || $EXE demos --task pusht --episodes 200 --seed 0 --out "$DEMOS"
for s in 4 5 6; do
  d=$OUT/diffusion-e300-s$s t=$OUT/difftop-diffusion-e300-s$s
  [ -f "$d/eval.json" ] || $EXE il-train --threads 1 --demos "$DEMOS" --out "$d" --policy diffusion \
    --seed $s --epochs 300 > "$d.log" 2>&1
  [ -f "$t/eval.json" ] || $EXE il-train --threads 1 --demos "$DEMOS" --out "$t" --policy difftop \
    --base "$d" --seed $s --epochs 5 > "$t.log" 2>&1
  echo "seed $s: diffusion $(tail -1 "$d.log"); difftop + diffusion $(tail -1 "$t.log")"
done
