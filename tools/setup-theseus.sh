#!/usr/bin/env bash
# Opt-in (DT_THESEUS=1 bash tools/test.sh): a venv with Theseus for tests/python/test_theseus_parity.py
# and `difftop bench trajopt --theseus build/venv-theseus/bin/python`. Not run by default: PyPI's
# torch pulls about 3 GB of CUDA packages; theseus-ai builds from source against it, and
# scikit-sparse needs Debian's SuiteSparse (the 0.4 series matches Debian 12's).
set -uo pipefail
cd "$(dirname "$0")/.."
venv=build/venv-theseus
if ! dpkg -s libsuitesparse-dev >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libsuitesparse-dev
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip() { "$venv/bin/python" -m pip -q --disable-pip-version-check "$@"; }
pip install torch numpy pytest cython &&
  pip install --no-build-isolation 'scikit-sparse<0.5' &&
  pip install --no-build-isolation theseus-ai ||
  { echo "setup-theseus: install failed (the Theseus cross-check will skip)"; exit 0; }
echo "setup-theseus: done"
