#!/usr/bin/env bash
# Run the RL comparison queue with N parallel workers (default 2), skipping finished runs and
# resuming interrupted ones. Each queue line is "task algo seed [key=value ...]"; every run
# uses configs/cpu.yaml plus the line's overrides. Output: $DIFFTOP_RESULTS/<algo>-<task>-s<seed>/.
# DIFFTOP_RESULTS picks the output folder (default runs/results).
# DIFFTOP_EXTRA adds key=value overrides to every line (e.g. "pg_mode=batched").
# DIFFTOP_BIN picks the program (default ./build/difftop; point it at a copy to keep rebuilding).
# usage: tools/run_experiments.sh QUEUE_FILE [WORKERS]
set -u
cd "$(dirname "$0")/.."
queue=$1; workers=${2:-2}
export DIFFTOP_BIN=${DIFFTOP_BIN:-./build/difftop}
export DIFFTOP_RESULTS=${DIFFTOP_RESULTS:-runs/results}
export DIFFTOP_EXTRA=${DIFFTOP_EXTRA:-}
mkdir -p "$DIFFTOP_RESULTS"
run_one() {
  local task=$1 algo=$2 seed=$3; shift 3
  local dir=$DIFFTOP_RESULTS/$algo-$task-s$seed
  if [ -f "$dir/done" ]; then return; fi
  if [ -f "$dir/checkpoint.safetensors" ]; then
    "$DIFFTOP_BIN" train --resume "$dir" >> "$dir.log" 2>&1
  else
    "$DIFFTOP_BIN" train --algo "$algo" --task "$task" --seed "$seed" --out "$dir" \
      --config configs/cpu.yaml progress=0 "$@" $DIFFTOP_EXTRA >> "$dir.log" 2>&1
  fi && touch "$dir/done"
}
export -f run_one
grep -v '^#' "$queue" | grep . | xargs -P "$workers" -L 1 bash -c 'run_one "$@"' _
