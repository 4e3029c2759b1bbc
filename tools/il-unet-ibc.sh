#!/usr/bin/env bash
# Pre-set comparison (session 9), fixed before any of its runs started: IBC + U-Net Diffusion,
# i.e. the IBC energies of tools/il-ibc.sh (runs/il-ibc/ibc-s{4,5,6}, unchanged) with their
# derivative-free optimiser started at the U-Net diffusion policy of the same training seed
# (runs/il-unet/diffusion-unet-s{4,5,6}, tools/il-unet.sh), scored like the U-Net rows: the 50
# upstream test seeds with sample seeds 0-4 (il-eval --sample-seeds 5).
# Claims (paper Table 1): (1) DiffTOP + U-Net Diffusion's mean score (0.512, measured) > IBC +
# U-Net Diffusion's; (2) IBC + U-Net Diffusion's mean < U-Net Diffusion's (0.455, measured).
# Usage: bash tools/il-unet-ibc.sh [UNET_DIR] [IBC_DIR]   (defaults runs/il-unet, runs/il-ibc;
# EXE picks the binary; SEEDS="5" runs a subset)
set -euo pipefail
export OPENBLAS_NUM_THREADS=1
UNET=${1:-runs/il-unet}
IBC=${2:-runs/il-ibc}
EXE=${EXE:-./build/difftop}
for s in ${SEEDS:-4 5 6}; do
  energy=$IBC/ibc-s$s
  base=$UNET/diffusion-unet-s$s
  for f in "$energy/model.safetensors" "$base/model.safetensors"; do
    [ -f "$f" ] || { echo "missing $f: run tools/il-ibc.sh and tools/il-unet.sh first" >&2; exit 1; }
  done
  d=$UNET/ibc-diffusion-unet-s$s
  mkdir -p "$d"
  cp "$energy/model.safetensors" "$d/"
  sed "s|^base: .*|base: $base|" "$energy/config.yaml" > "$d/config.yaml"
  grep -q "^base: $base\$" "$d/config.yaml" || { echo "no base line in $energy/config.yaml" >&2; exit 1; }
  grep -q '"sample_seeds": 5' "$d/eval.json" 2>/dev/null ||
    $EXE il-eval "$d" --threads 1 --episodes 50 --seed 100000 --sample-seeds 5 > "$d.eval.log" 2>&1
  echo "$(basename "$d"): $(tail -1 "$d.eval.log")"
done
