#!/usr/bin/env bash
# Pre-set comparison of the diffusion policy's two noise nets on Push-T (session 8), fixed
# before any of its runs started: the demos of tools/il-confirm-diffusion.sh (smooth expert,
# 200 demos, generator seed 0); training seeds 4, 5, 6; the epoch rule's diffusion budget (102
# epochs) for both noise nets, everything else default (U-Net: unet_dims=64,128, kernel 5, 8
# groups); then DiffTOP (5 epochs, H = 1) on each U-Net policy. Every policy is scored on the 50
# upstream test seeds with sample seeds 0-4 (il-eval --sample-seeds 5).
# Claims: (1) U-Net diffusion's mean score > MLP diffusion's; (2) DiffTOP + U-Net diffusion's
# mean >= U-Net diffusion's (the paper's DiffTOP + Diffusion >= Diffusion).
# Usage: bash tools/il-unet.sh [OUT_DIR]   (default runs/il-unet; finished steps are skipped;
# EXE picks the binary, default ./build/difftop; SEEDS="5" runs a subset)
set -euo pipefail
source "$(dirname "$0")/il-lib.sh"
OUT=${1:-runs/il-unet}
mkdir -p "$OUT"
il_smooth_demos
for s in ${SEEDS:-4 5 6}; do
  train "$OUT/diffusion-mlp-s$s" --policy diffusion --seed $s --epochs 102
  train "$OUT/diffusion-unet-s$s" --policy diffusion noise_net=unet --seed $s --epochs 102
  train "$OUT/difftop-diffusion-unet-s$s" --policy difftop --base "$OUT/diffusion-unet-s$s" \
    --seed $s --epochs 5
done
