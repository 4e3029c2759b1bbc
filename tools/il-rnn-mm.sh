#!/usr/bin/env bash
# Pre-set comparison (session 10), fixed before any of its runs started (and after the first
# seeds of tools/il-rnn.sh had been scored): the BC family on the BC-RNN-GMM base of
# tools/il-rnn.sh (LSTM 2 x 128 over 8 frames, 5 Gaussian modes) on the multimodal Push-T demos
# of tools/il-gmm-mm.sh (`difftop demos --task pusht --multimodal --episodes 200 --seed 0`),
# where session 9's MLP GMM base gave DiffTOP + BC > Residual + BC on every seed.
# Training seeds 1, 2, 3; BC-RNN-GMM 100 epochs (section 6's BC budget); on each, Residual and
# DiffTOP (H = 1) 10 epochs with the same 8 frames; everything else default. Every policy is
# scored on the 50 upstream test seeds with sample seeds 0-4.
# Claims: (1) DiffTOP + BC-RNN-GMM's mean score > Residual + BC-RNN-GMM's; (2) DiffTOP +
# BC-RNN-GMM's mean > BC-RNN-GMM's.
# Usage: bash tools/il-rnn-mm.sh [OUT_DIR] [MM_DIR]   (defaults runs/il-rnn-mm, runs/il-mm;
# finished steps are skipped; EXE picks the binary; SEEDS="2" runs a subset)
set -euo pipefail
source "$(dirname "$0")/il-lib.sh"
OUT=${1:-runs/il-rnn-mm}
MM=${2:-runs/il-mm}
il_mm_demos "$MM"
mkdir -p "$OUT"
for s in ${SEEDS:-1 2 3}; do
  base="$OUT/bc-rnn-gmm-s$s"
  train "$base" --policy bc gmm_modes=5 rnn_hidden=128 rnn_layers=2 obs_steps=8 --seed $s --epochs 100
  train "$OUT/residual-bc-rnn-gmm-s$s" --policy residual --base "$base" obs_steps=8 --seed $s --epochs 10
  train "$OUT/difftop-bc-rnn-gmm-s$s" --policy difftop --base "$base" obs_steps=8 --seed $s --epochs 10
done
