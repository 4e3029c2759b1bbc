#!/usr/bin/env bash
# The main job: set up, build, train a DiffTOP policy on cartpole-swingup (CPU profile, about
# 5 minutes on 2 cores), evaluate it, and plot its learning curve against published TD-MPC.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-debian.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2
export OPENBLAS_NUM_THREADS=1
out=${1:-runs/main-difftop-cartpole-swingup}
rm -rf "$out"
./build/difftop train --algo difftop --task cartpole-swingup --seed 1 --steps 30000 \
  --config configs/cpu.yaml action_repeat=8 lm_project=1 eval_freq=5000 --out "$out"
./build/difftop eval "$out" --episodes 10
./build/difftop plot "$out" --out "$out/curves.png"
echo "learning curve: $out/curves.png"
