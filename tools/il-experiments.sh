#!/usr/bin/env bash
# The Push-T imitation-learning comparison of docs/il.md (CPU budget: minutes per run).
# Usage: bash tools/il-experiments.sh [OUT_DIR]   (default runs/il; finished runs are skipped)
# Environment:
#   EXE      the difftop binary (default ./build/difftop; a copy lets the tree be rebuilt meanwhile)
#   EXPERT   smooth (default) or waypoints: the Push-T expert that writes the demos
#   JOBS     runs at a time (default 1); a run waits for the base policy it needs
#   E_BC E_DIFF E_RES E_DT E_DT_SHORT   epochs of BC, diffusion, residual, DiffTOP + BC and the
#            shorter DiffTOP variants (defaults 100 300 30 30 15, chosen for the 7.6k-step
#            waypoint-expert dataset; docs/il.md gives the ones used for the smooth dataset)
set -euo pipefail
export OPENBLAS_NUM_THREADS=1
OUT=${1:-runs/il}
EXE=${EXE:-./build/difftop}
EXPERT=${EXPERT:-smooth}
JOBS=${JOBS:-1}
E_BC=${E_BC:-100} E_DIFF=${E_DIFF:-300} E_RES=${E_RES:-30} E_DT=${E_DT:-30} E_DT_SHORT=${E_DT_SHORT:-15}
DEMOS=$OUT/pusht-demos-s0.hdf5
mkdir -p "$OUT"
[ -f "$DEMOS" ] || $EXE demos --task pusht --expert "$EXPERT" --episodes 200 --seed 0 --out "$DEMOS"

declare -A PID
run() {  # name, the run it needs ("-" for none), then il-train arguments
  local name=$1 dep=$2; shift 2
  [ -f "$OUT/$name/eval.json" ] && return 0
  if [ "$dep" != - ]; then
    [ -n "${PID[$dep]:-}" ] && { wait "${PID[$dep]}" 2>/dev/null || true; }
    if [ ! -f "$OUT/$dep/model.safetensors" ]; then
      echo "$name: skipped, $dep did not finish"
      return 0
    fi
  fi
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  (
    $EXE il-train --demos "$DEMOS" --out "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1 || true
    echo "$name: $(tail -1 "$OUT/$name.log")"
  ) &
  PID[$name]=$!
}
# the order keeps JOBS busy (a run's base is started well before it) and puts the main
# comparison first: BC, residual + BC and DiffTOP + BC for three training seeds, then the
# diffusion family and the initialisation ablation, then the CVAE and the horizon ablation
for s in 1 2 3; do run bc-s$s - --policy bc --seed $s --epochs $E_BC; done
for s in 1 2 3; do
  run difftop-bc-s$s bc-s$s --policy difftop --base "$OUT/bc-s$s" --seed $s --epochs $E_DT
  run residual-bc-s$s bc-s$s --policy residual --base "$OUT/bc-s$s" --seed $s --epochs $E_RES
done
for s in 1 2 3; do run diffusion-s$s - --policy diffusion --seed $s --epochs $E_DIFF; done
for s in 1 2 3; do
  run difftop-zero-s$s - --policy difftop --seed $s --epochs $E_DT_SHORT init=zero
  run difftop-random-s$s - --policy difftop --seed $s --epochs $E_DT_SHORT init=random
done
for s in 1 2 3; do
  run difftop-diffusion-s$s diffusion-s$s --policy difftop --base "$OUT/diffusion-s$s" --seed $s --epochs $E_DT_SHORT
  run residual-diffusion-s$s diffusion-s$s --policy residual --base "$OUT/diffusion-s$s" --seed $s --epochs $E_RES
done
run difftop-cvae-bc-s1 bc-s1 --policy difftop --base "$OUT/bc-s1" --seed 1 --epochs $E_DT_SHORT cvae=1
# planning-horizon ablation (Table 6), seed 1 only: H = 3 and 5 cost 3x and 5x an H = 1 step;
# the H = 1 reference at the same epochs
run difftop-bc-short-s1 bc-s1 --policy difftop --base "$OUT/bc-s1" --seed 1 --epochs $E_DT_SHORT
run difftop-bc-h3-s1 bc-s1 --policy difftop --base "$OUT/bc-s1" --seed 1 --epochs $E_DT_SHORT horizon=3
run difftop-bc-h5-s1 bc-s1 --policy difftop --base "$OUT/bc-s1" --seed 1 --epochs $E_DT_SHORT horizon=5
for s in 2 3; do run difftop-cvae-bc-s$s bc-s$s --policy difftop --base "$OUT/bc-s$s" --seed $s --epochs $E_DT_SHORT cvae=1; done
# a CVAE with a 30x weaker KL term and more epochs, for the multimodal-objective figure
run difftop-cvae-kl1e-4-bc-s1 bc-s1 --policy difftop --base "$OUT/bc-s1" --seed 1 --epochs $E_DT cvae=1 kl_weight=1e-4
wait
