#!/usr/bin/env bash
# Run the RL comparison queue with N parallel workers (default 2), skipping finished runs and
# resuming interrupted ones. Each queue line is "task algo seed [key=value ...]"; every run
# uses configs/cpu.yaml plus the line's overrides. Output: runs/results/<algo>-<task>-s<seed>/.
# usage: tools/run_experiments.sh QUEUE_FILE [WORKERS]
set -u
cd "$(dirname "$0")/.."
queue=$1; workers=${2:-2}
mkdir -p runs/results
run_one() {
  local task=$1 algo=$2 seed=$3; shift 3
  local dir=runs/results/$algo-$task-s$seed
  if [ -f "$dir/done" ]; then return; fi
  if [ -f "$dir/checkpoint.safetensors" ]; then
    ./build/difftop train --resume "$dir" >> "$dir.log" 2>&1
  else
    ./build/difftop train --algo "$algo" --task "$task" --seed "$seed" --out "$dir" \
      --config configs/cpu.yaml progress=0 "$@" >> "$dir.log" 2>&1
  fi && touch "$dir/done"
}
export -f run_one
grep -v '^#' "$queue" | grep . | xargs -P "$workers" -L 1 bash -c 'run_one "$@"' _
