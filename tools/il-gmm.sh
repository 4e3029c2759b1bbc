#!/usr/bin/env bash
# Pre-set comparison (session 9), fixed before any of its runs started: the BC family on a
# Gaussian-mixture BC base (gmm_modes=5, robomimic's GMM head; the paper's Push-T BC is a
# BC-RNN-GMM, so its "BC" base is stochastic and multimodal, where ours so far was a
# deterministic MSE regressor). The demos of tools/il-confirm-diffusion.sh (smooth expert, 200
# demos, generator seed 0); training seeds 4, 5, 6; the epoch rule's budgets: BC-GMM 34 epochs,
# Residual 10, DiffTOP (H = 1) 10, everything else default (gmm_min_std 1e-4, lr 1e-3, batch 256).
# Every policy is scored on the 50 upstream test seeds with sample seeds 0-4
# (il-eval --sample-seeds 5).
# Claims: (1) DiffTOP + BC-GMM's mean score > Residual + BC-GMM's (the paper's DiffTOP + BC >
# Residual + BC); (2) DiffTOP + BC-GMM's mean > BC-GMM's (DiffTOP + BC > BC).
# Usage: bash tools/il-gmm.sh [OUT_DIR]   (default runs/il-gmm; finished steps are skipped;
# EXE picks the binary, default ./build/difftop; SEEDS="5" runs a subset)
set -euo pipefail
source "$(dirname "$0")/il-lib.sh"
OUT=${1:-runs/il-gmm}
mkdir -p "$OUT"
il_smooth_demos
for s in ${SEEDS:-4 5 6}; do
  train "$OUT/bc-gmm-s$s" --policy bc gmm_modes=5 --seed $s --epochs 34
  train "$OUT/residual-bc-gmm-s$s" --policy residual --base "$OUT/bc-gmm-s$s" --seed $s --epochs 10
  train "$OUT/difftop-bc-gmm-s$s" --policy difftop --base "$OUT/bc-gmm-s$s" --seed $s --epochs 10
done
