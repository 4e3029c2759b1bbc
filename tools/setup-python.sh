#!/usr/bin/env bash
# A virtual environment (build/venv) with the reference implementations the cross-checks compare
# against: dm_control + mujoco 3.x, gym-pusht (pymunk, shapely), gymnasium. Debian's
# /usr/bin/python3 keeps torch 1.13 for the PyTorch cross-checks. Best effort: a package that
# cannot be installed makes its tests skip, saying why.
set -uo pipefail
cd "$(dirname "$0")/.."
venv=build/venv
py=$(command -v python3)
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv" || { echo "setup-python: cannot create $venv"; exit 0; }
fi
pip() { "$venv/bin/python" -m pip -q --disable-pip-version-check "$@"; }
pip install --upgrade pip >/dev/null 2>&1
# numpy 2 breaks older wheels; the parity tests were written against mujoco 3.x, and dm_control
# 1.0.52+ needs mujoco 4: dm_control and mujoco are resolved together, so pip picks the last
# dm_control that runs on mujoco 3 (installed one after the other, they ended up mismatched)
pip install pytest "numpy<2" >/dev/null 2>&1 || echo "setup-python: pytest/numpy install failed"
for req in 'dm_control mujoco>=3.17,<4' 'gym-pusht' 'gymnasium'; do
  # shellcheck disable=SC2086  # a line may name several packages
  pip install "numpy<2" $req >/dev/null 2>&1 || echo "setup-python: could not install $req (its cross-checks will skip)"
done
# Theseus is opt-in (several GB of downloads): DT_THESEUS=1
if [ "${DT_THESEUS:-0}" = 1 ]; then bash tools/setup-theseus.sh; fi
echo "setup-python: done ($("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])'))"
