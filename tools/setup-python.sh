#!/usr/bin/env bash
# A virtual environment with the reference implementations the cross-checks compare against
# (dm_control + mujoco, gym-pusht + pymunk, theseus-ai + a CPU torch). Best effort: tests that
# need a missing package skip themselves and say so.
set -uo pipefail
cd "$(dirname "$0")/.."
py=$(command -v python3)
if [ ! -x build/venv/bin/python ]; then
  "$py" -m venv build/venv || exit 0
fi
pip="build/venv/bin/python -m pip"
$pip install -q --upgrade pip >/dev/null 2>&1
$pip install -q pytest numpy >/dev/null 2>&1 || echo "setup-python: numpy/pytest install failed"
for req in "dm_control" "gym-pusht" "torch" "theseus-ai" "gymnasium" "safetensors"; do
  build/venv/bin/python -c "import importlib.util,sys; sys.exit(0 if importlib.util.find_spec('${req//-/_}'.replace('theseus_ai','theseus').replace('gym_pusht','gym_pusht')) else 1)" 2>/dev/null && continue
  $pip install -q "$req" >/dev/null 2>&1 || echo "setup-python: could not install $req (its cross-check will skip)"
done
echo "setup-python: done"
