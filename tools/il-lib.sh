# Shared by the pre-set IL comparison scripts (tools/il-unet.sh, il-unet-residual.sh, il-gmm.sh,
# il-gmm-mm.sh, il-rnn.sh, il-rnn-mm.sh); source it, do not run it. Sets the defaults EXE
# (./build/difftop) and DEMOS
# (the smooth expert's 200 Push-T demos of tools/il-confirm-diffusion.sh) unless given.
export OPENBLAS_NUM_THREADS=1
EXE=${EXE:-./build/difftop}
DEMOS=${DEMOS:-runs/il-confirm/pusht-demos-s0.hdf5}

# il_smooth_demos: generate $DEMOS (generator seed 0) if it is missing
il_smooth_demos() {
  mkdir -p "$(dirname "$DEMOS")"
  [ -f "$DEMOS" ] || $EXE demos --task pusht --episodes 200 --seed 0 --out "$DEMOS"
}

# il_mm_demos MM_DIR: set DEMOS to MM_DIR/pusht-mm-s0.hdf5, the multimodal expert's 200 Push-T
# demos (docs/il.md section 6, generator seed 0), generating the file if it is missing
il_mm_demos() {
  DEMOS=$1/pusht-mm-s0.hdf5
  mkdir -p "$1"
  [ -f "$DEMOS" ] || $EXE demos --task pusht --multimodal --episodes 200 --seed 0 --out "$DEMOS" > "$1/demos.log" 2>&1
}

# il_train_eval EXE DEMOS RUN_DIR IL-TRAIN-ARGS...: train RUN_DIR once (no evaluation), then
# score it on the 50 upstream test seeds with sample seeds 0-4; finished steps are skipped.
il_train_eval() {
  local exe=$1 demos=$2 d=$3
  shift 3
  [ -f "$d/model.safetensors" ] || $exe il-train --threads 1 --demos "$demos" --out "$d" \
    --eval-episodes 0 "$@" > "$d.log" 2>&1
  grep -q '"sample_seeds": 5' "$d/eval.json" 2>/dev/null ||
    $exe il-eval "$d" --threads 1 --episodes 50 --seed 100000 --sample-seeds 5 > "$d.eval.log" 2>&1
  echo "$(basename "$d"): $(tail -1 "$d.eval.log")"
}

# train RUN_DIR IL-TRAIN-ARGS...: il_train_eval with $EXE and $DEMOS
train() { il_train_eval "$EXE" "$DEMOS" "$@"; }
