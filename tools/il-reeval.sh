#!/usr/bin/env bash
# Re-evaluate finished Push-T runs of stochastic policies with several sample seeds (session 7),
# fixed before it ran: every run below is evaluated on the 50 upstream test seeds (100000..)
# with sample seeds 0..N-1 (default 5) by `difftop il-eval --sample-seeds N`, in a copy of the run
# (model and config) under OUT, so that the training-time eval.json stays as it was. The claims are
# then judged on the means over sample seeds (docs/il.md, "Sampling noise").
# Usage: bash tools/il-reeval.sh OUT RUN_DIR...   (N=5 by default; EXE picks the program)
set -euo pipefail
export OPENBLAS_NUM_THREADS=1
EXE=${EXE:-./build/difftop}
N=${N:-5}
OUT=$1; shift
mkdir -p "$OUT"
for run in "$@"; do
  name=$(basename "$(dirname "$run")")-$(basename "$run")
  dst=$OUT/$name
  if [ ! -f "$dst/eval.json" ] || ! grep -q '"sample_seeds": '"$N" "$dst/eval.json"; then
    mkdir -p "$dst"
    cp "$run/model.safetensors" "$run/config.yaml" "$dst/"
    $EXE il-eval "$dst" --threads 1 --episodes 50 --seed 100000 --sample-seeds "$N" > "$dst.log" 2>&1
  fi
  echo "$name: $(tail -1 "$dst.log")"
done
