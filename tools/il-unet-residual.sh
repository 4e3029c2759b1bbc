#!/usr/bin/env bash
# Pre-set comparison (session 9), fixed before any of its runs started: Residual + U-Net
# Diffusion against DiffTOP + U-Net Diffusion (paper Table 1's "DiffTOP + Diffusion > Residual +
# Diffusion"). The U-Net diffusion bases and the DiffTOP runs are those of tools/il-unet.sh
# (runs/il-unet, training seeds 4, 5, 6); the residual MLP is trained on each base with the epoch
# rule's residual budget (10 epochs, as in tools/il-experiments.sh), all else default, and scored
# like the others: the 50 upstream test seeds with sample seeds 0-4 (il-eval --sample-seeds 5).
# Claim: DiffTOP + U-Net Diffusion's mean score (0.512, already measured) > Residual + U-Net
# Diffusion's mean score.
# Usage: bash tools/il-unet-residual.sh [UNET_DIR]   (default runs/il-unet; finished steps are
# skipped; EXE picks the binary, default ./build/difftop; SEEDS="5" runs a subset)
set -euo pipefail
source "$(dirname "$0")/il-lib.sh"
OUT=${1:-runs/il-unet}
for s in ${SEEDS:-4 5 6}; do
  base="$OUT/diffusion-unet-s$s"
  d="$OUT/residual-diffusion-unet-s$s"
  [ -f "$base/model.safetensors" ] || { echo "missing $base: run tools/il-unet.sh first" >&2; exit 1; }
  train "$d" --policy residual --base "$base" --seed $s --epochs 10
done
