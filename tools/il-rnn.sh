#!/usr/bin/env bash
# Pre-set comparison (session 10), fixed before any of its runs started: the BC family on the
# paper's BC base, a BC-RNN with a GMM head (robomimic's BC-RNN-GMM: here an LSTM over the last
# 8 frames, 2 layers of 128 on the CPU, feeding the default head of 2 x 256 and 5 Gaussian
# modes). The demos of tools/il-confirm-diffusion.sh (smooth expert, 200 demos, generator seed
# 0); training seeds 4, 5, 6; the epoch rule's budgets: BC-RNN-GMM 34 epochs, Residual 10,
# DiffTOP (H = 1) 10; the refiners take the same 8 frames (a refiner must see its base's
# frames); everything else default (lr 1e-3, batch 256). Every policy is scored on the 50
# upstream test seeds with sample seeds 0-4 (il-eval --sample-seeds 5).
# Claims: (1) DiffTOP + BC-RNN-GMM's mean score > Residual + BC-RNN-GMM's (the paper's
# DiffTOP + BC > Residual + BC); (2) DiffTOP + BC-RNN-GMM's mean > BC-RNN-GMM's (DiffTOP + BC > BC).
# Usage: bash tools/il-rnn.sh [OUT_DIR]   (default runs/il-rnn; finished steps are skipped;
# EXE picks the binary, default ./build/difftop; SEEDS="5" runs a subset)
set -euo pipefail
source "$(dirname "$0")/il-lib.sh"
OUT=${1:-runs/il-rnn}
mkdir -p "$OUT"
il_smooth_demos
for s in ${SEEDS:-4 5 6}; do
  train "$OUT/bc-rnn-gmm-s$s" --policy bc gmm_modes=5 rnn_hidden=128 rnn_layers=2 obs_steps=8 \
    --seed $s --epochs 34
  train "$OUT/residual-bc-rnn-gmm-s$s" --policy residual --base "$OUT/bc-rnn-gmm-s$s" obs_steps=8 \
    --seed $s --epochs 10
  train "$OUT/difftop-bc-rnn-gmm-s$s" --policy difftop --base "$OUT/bc-rnn-gmm-s$s" obs_steps=8 \
    --seed $s --epochs 10
done
