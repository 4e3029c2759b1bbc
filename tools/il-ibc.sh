#!/usr/bin/env bash
# The IBC baseline on Push-T (docs/il.md, "IBC"), fixed before it ran:
#   - data: the smooth expert's 200 demos, generator seed 0 (tools/il-confirm-diffusion.sh's file);
#   - IBC: energy MLP 256x2 (ReLU) over [features, 4-action chunk], InfoNCE with 64 uniform
#     counter-examples, Adam 1e-3, batch 256, 20 epochs, training seeds 4, 5, 6;
#     acting: derivative-free optimisation, 1024 samples, 3 rounds (std 0.33, shrink 0.5);
#   - IBC + Diffusion: the same trained energy, its population started at the 300-epoch diffusion
#     policy of the same seed (runs of tools/il-confirm-diffusion.sh) plus N(0, 0.1^2) (the paper:
#     "uses the action from a pre-trained Diffusion Policy as the action initialization in the
#     test-time optimization process"; training is IBC's own);
#   - evaluation: 50 upstream Push-T test seeds (100000..), 300 steps.
# Claims tested (paper §5.2, Table 1): DiffTOP + Diffusion > IBC + Diffusion (mean over seeds
# 4-6; DiffTOP + Diffusion from tools/il-confirm-diffusion.sh); IBC + Diffusion < Diffusion
# ("the training objective used in IBC actually deteriorates the base actions").
# Usage: bash tools/il-ibc.sh [CONFIRM_DIR] [OUT_DIR]  (defaults runs/il-confirm, runs/il-ibc)
set -euo pipefail
export OPENBLAS_NUM_THREADS=1
CONFIRM=${1:-runs/il-confirm}
OUT=${2:-runs/il-ibc}
EXE=${EXE:-./build/difftop}
DEMOS=$CONFIRM/pusht-demos-s0.hdf5
mkdir -p "$OUT"
[ -f "$DEMOS" ] || $EXE demos --task pusht --episodes 200 --seed 0 --out "$DEMOS"
for s in 4 5 6; do
  run=$OUT/ibc-s$s
  [ -f "$run/eval.json" ] || $EXE il-train --threads 1 --demos "$DEMOS" --out "$run" --policy ibc \
    --seed $s --epochs 20 > "$run.log" 2>&1
  tail -1 "$run.log"
  base=$CONFIRM/diffusion-e300-s$s
  [ -f "$base/model.safetensors" ] || $EXE il-train --threads 1 --demos "$DEMOS" --out "$base" \
    --policy diffusion --seed $s --epochs 300 > "$base.log" 2>&1
  # IBC + Diffusion: the trained energy with the diffusion policy as the optimiser's start
  ref=$OUT/ibc-diffusion-s$s
  mkdir -p "$ref"
  cp "$run/model.safetensors" "$ref/"
  sed "s|^base: .*|base: $base|" "$run/config.yaml" > "$ref/config.yaml"
  [ -f "$ref/eval.txt" ] || $EXE il-eval "$ref" --threads 1 --episodes 50 --seed 100000 > "$ref/eval.txt" 2>&1
  tail -1 "$ref/eval.txt"
done
