#!/usr/bin/env bash
# Install what difftop needs on Debian 12 (run as root, or with sudo available).
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config git       # toolchain
  libopenblas-dev                            # matrix products (CBLAS) and LAPACK
  libyaml-dev                                # YAML configs
  libmujoco-dev libqhull-dev                 # MuJoCo 2.2.2 physics (qhull fixes its CMake config)
  libosmesa6-dev                             # headless offscreen rendering for pixel observations
  libchipmunk-dev                            # Chipmunk2D physics for Push-T
  libhdf5-dev                                # demonstration datasets (robomimic layout)
  libpng-dev libgif-dev                      # PNG plots and GIF episode renders
  clang libclang-rt-14-dev valgrind          # fuzzing, sanitizers, leak checks
  python3-torch python3-numpy python3-pytest python3-h5py   # cross-checks against PyTorch
  python3-matplotlib                         # learning-curve plots (difftop plot)
)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
echo "setup-debian: all packages present"
