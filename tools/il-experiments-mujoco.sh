#!/usr/bin/env bash
# The MuJoCo (reacher-hard) imitation-learning comparison of docs/il.md, "MuJoCo task".
# Usage: bash tools/il-experiments-mujoco.sh [OUT_DIR] [PHASE...]
#   OUT_DIR default runs/il-mujoco; PHASE: select | main | extra | dart | early | early-long |
#   cvae | mainN | extraN | all
#   (default all).
# Finished runs (eval.json, or train.csv + model for the selection runs) are skipped, so the
# script resumes where it stopped. DIFFTOP_BIN picks the binary (default: a copy of
# build/difftop under OUT_DIR/bin, so the tree can be rebuilt while it runs).
set -euo pipefail
export OPENBLAS_NUM_THREADS=1
OUT=${1:-runs/il-mujoco}
shift || true
PHASES=${*:-all}
mkdir -p "$OUT/bin"
if [ -z "${DIFFTOP_BIN:-}" ]; then
  [ -x "$OUT/bin/difftop" ] || cp build/difftop "$OUT/bin/difftop"
  DIFFTOP_BIN=$OUT/bin/difftop
fi
EXE="nice -n 5 $DIFFTOP_BIN"
TASK=reacher-hard
# 25 demos, DART noise 0.3 on the executed action, clean expert labels, generator seed 0
DEMOS=$OUT/$TASK-demos-n25-noise0.3-s0.hdf5
[ -f "$DEMOS" ] || $EXE demos --task $TASK --episodes 25 --seed 0 --noise 0.3 --out "$DEMOS"
# epochs, fixed from the selection runs' training loss (docs/il.md) before any final evaluation
E_BC=300 E_RES=100 E_DT=50 E_DIFF=400
# DiffTOP + diffusion and the zero / N(0, 1) initialisations: half of DiffTOP + BC's epochs, to fit
# the CPU budget (chosen before any of them was evaluated)
E_DTX=25
# BC's held-out loss is lowest after 3 epochs (select/bc/train.csv: 0.0395 at epoch index 2, 0.070
# at 300): the under-fitting base of the "early" phase, whose refiners keep E_RES and E_DT
E_BC_EARLY=3

sel() {  # selection run: last 5 demos held out, training seed 0, no evaluation
  local name=$1; shift
  local d=$OUT/select/$name
  [ -f "$d/train.csv" ] && [ -f "$d/model.safetensors" ] && return 0
  mkdir -p "$OUT/select"
  $EXE il-train --demos "$DEMOS" --out "$d" --val-demos 5 --seed 0 --eval-episodes 0 "$@" > "$d.log" 2>&1
  echo "select/$name: $(tail -1 "$d.log")"
}
run() {  # final run on all 25 demos, evaluated on 50 episodes from env seeds 100000..
  local name=$1; shift
  [ -f "$OUT/$name/eval.json" ] && return 0
  $EXE il-train --demos "$DEMOS" --out "$OUT/$name" --eval-episodes 50 --eval-seed 100000 "$@" \
    > "$OUT/$name.log" 2>&1
  echo "$name: $(tail -1 "$OUT/$name.log")"
}
select_phase() {
  local S=$OUT/select
  sel bc --policy bc --epochs 300
  sel residual-bc --policy residual --base "$S/bc" --epochs 100
  sel difftop-bc --policy difftop --base "$S/bc" --epochs 100
  sel diffusion --policy diffusion --epochs 400
  # DiffTOP + diffusion and the zero / N(0, 1) initialisations: no selection run (E_DTX below)
}
main_seed() {  # BC, residual + BC, DiffTOP + BC
  local s=$1
  run bc-s$s --policy bc --seed $s --epochs $E_BC
  run residual-bc-s$s --policy residual --base "$OUT/bc-s$s" --seed $s --epochs $E_RES
  run difftop-bc-s$s --policy difftop --base "$OUT/bc-s$s" --seed $s --epochs $E_DT
}
extra_seed() {  # diffusion, DiffTOP + diffusion, zero and N(0, 1) initialisation
  local s=$1
  run diffusion-s$s --policy diffusion --seed $s --epochs $E_DIFF
  run difftop-diffusion-s$s --policy difftop --base "$OUT/diffusion-s$s" --seed $s --epochs $E_DTX
  run difftop-zero-s$s --policy difftop --seed $s --epochs $E_DTX init=zero
  run difftop-random-s$s --policy difftop --seed $s --epochs $E_DTX init=random
}
early_phase() {  # BC stopped where its held-out loss was lowest (3 epochs), and both refiners on it
  for s in 1 2 3; do
    run bc-early-s$s --policy bc --seed $s --epochs $E_BC_EARLY
    run residual-bc-early-s$s --policy residual --base "$OUT/bc-early-s$s" --seed $s --epochs $E_RES
    run difftop-bc-early-s$s --policy difftop --base "$OUT/bc-early-s$s" --seed $s --epochs $E_DT
  done
}
early_long_phase() {  # DiffTOP on the early base with the residual's 100 epochs (added after the
  # early phase: DiffTOP's loss was still falling at 50, and the residual had twice the epochs)
  for s in 1 2 3; do
    run difftop-bc-early-e100-s$s --policy difftop --base "$OUT/bc-early-s$s" --seed $s --epochs $E_RES
  done
}
cvae_phase() {  # the CVAE variant of DiffTOP + BC on the main BC bases (main protocol's epochs)
  for s in 1 2 3; do
    run difftop-cvae-bc-s$s --policy difftop --base "$OUT/bc-s$s" --seed $s --epochs $E_DT cvae=1
  done
}
dart_phase() {  # the same 25 episodes without DART noise: BC only, for the noise comparison
  local D0=$OUT/$TASK-demos-n25-noise0-s0.hdf5
  [ -f "$D0" ] || $EXE demos --task $TASK --episodes 25 --seed 0 --out "$D0"
  for s in 1 2 3; do DEMOS=$D0 run bc-nonoise-s$s --policy bc --seed $s --epochs $E_BC; done
}
for ph in $PHASES; do
  case $ph in
    select) select_phase ;;
    main) for s in 1 2 3; do main_seed $s; done ;;
    extra) for s in 1 2 3; do extra_seed $s; done ;;
    dart) dart_phase ;;
    early) early_phase ;;
    early-long) early_long_phase ;;
    cvae) cvae_phase ;;
    main1|main2|main3) main_seed ${ph#main} ;;
    extra1|extra2|extra3) extra_seed ${ph#extra} ;;
    all) select_phase; for s in 1 2 3; do main_seed $s; done; for s in 1 2 3; do extra_seed $s; done
         dart_phase ;;
    *) echo "unknown phase '$ph' (select, main, extra, dart, mainN, extraN, all)" >&2; exit 2 ;;
  esac
done
