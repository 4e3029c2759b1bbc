#!/usr/bin/env bash
# Pre-set comparison (session 9), fixed before any of its runs started: the BC family on a
# Gaussian-mixture BC base on the multimodal Push-T demos (docs/il.md section 6: the file of
# tools/il-mm-residual.sh, `difftop demos --task pusht --multimodal --episodes 200 --seed 0`),
# where a mixture head has two demonstrated modes to capture and an MSE BC averages them.
# Training seeds 1, 2, 3 (those of section 6); BC-GMM (gmm_modes=5) 100 epochs (section 6's BC
# budget); on each: Residual 10 epochs, DiffTOP (H = 1) 10 epochs, CVAE DiffTOP (beta 1e-4)
# 10 epochs (section 6's refiner budget and CVAE setting); everything else default. Every
# policy is scored on the 50 upstream test seeds with sample seeds 0-4.
# Claims: (1) DiffTOP + BC-GMM's mean score > Residual + BC-GMM's; (2) CVAE DiffTOP + BC-GMM's
# mean > Residual + BC-GMM's; (3) BC-GMM's mean > the MSE BC's 0.293 (section 6, same seeds).
# Usage: bash tools/il-gmm-mm.sh [OUT_DIR] [MM_DIR]   (defaults runs/il-gmm-mm, runs/il-mm;
# finished steps are skipped; EXE picks the binary; SEEDS="2" runs a subset)
set -euo pipefail
source "$(dirname "$0")/il-lib.sh"
OUT=${1:-runs/il-gmm-mm}
MM=${2:-runs/il-mm}
il_mm_demos "$MM"
mkdir -p "$OUT"
for s in ${SEEDS:-1 2 3}; do
  base="$OUT/bc-gmm-s$s"
  train "$base" --policy bc gmm_modes=5 --seed $s --epochs 100
  train "$OUT/residual-bc-gmm-s$s" --policy residual --base "$base" --seed $s --epochs 10
  train "$OUT/difftop-bc-gmm-s$s" --policy difftop --base "$base" --seed $s --epochs 10
  train "$OUT/cvae-difftop-bc-gmm-s$s" --policy difftop --base "$base" --seed $s --epochs 10 \
    cvae=1 kl_weight=1e-4
done
