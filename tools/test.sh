#!/usr/bin/env bash
# Set up and run every test: the C suites (release and ASan+UBSan builds), a valgrind pass,
# and the Python cross-checks. Usage: bash tools/test.sh   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-debian.sh
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MUJOCO_GL=osmesa

echo "== release build and tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2
(cd build && ctest --output-on-failure -j2)

echo "== packaging: install, then build a consumer with find_package and with pkg-config"
prefix="$PWD/build/install-test"
rm -rf "$prefix" build/consumer
cmake --install build --prefix "$prefix" >/dev/null
cmake -S tests/packaging -B build/consumer -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build build/consumer >/dev/null
LD_LIBRARY_PATH="$prefix/lib" build/consumer/consumer
gcc tests/packaging/main.c $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs difftop) \
  -o build/consumer/consumer-pc
LD_LIBRARY_PATH="$prefix/lib" build/consumer/consumer-pc

echo "== ASan + UBSan build and tests"
# -O1 keeps the sanitizers' reports exact and the suite fast enough; the Push-T expert's score is
# checked in the release run, here a few seeds exercise its code
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DDT_SANITIZE=ON >/dev/null
cmake --build build-asan -j2
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/../tests/lsan.supp DT_PUSHT_EXPERT_SEEDS=3 ctest --output-on-failure -j2)

echo "== valgrind (memcheck) on the base, tensor, io, nn, trajopt, rl and il/ibc suites"
for t in build/base_rng_test build/base_alloc_test build/base_status_test build/base_system_test \
         build/tensor_ops_test build/tensor_stage_test build/io_safetensors_test build/io_st_replay_test build/io_config_test \
         build/io_csv_test build/io_image_test build/nn_nn_test build/nn_convnet_test \
         build/nn_torch_crosscheck_test build/trajopt_quadratic_test build/trajopt_trajopt_test \
         build/rl_replay_test build/rl_config_test build/il_ibc_test; do
  [ -x "$t" ] || continue
  valgrind -q --error-exitcode=9 --leak-check=full "$t" >/dev/null
  echo "valgrind clean: $t"
done

echo "== Python cross-checks (each test skips, saying why, when its reference is missing)"
bash tools/setup-python.sh
export DT_LIB="$PWD/build/libdifftop.so"
run_pytest() {  # pytest exits 5 when it collects no test: not a failure here
  local s=0; "$@" -m pytest -q -rs tests/python || s=$?
  [ $s -eq 0 ] || [ $s -eq 5 ] || exit $s
}
run_pytest /usr/bin/python3            # Debian's torch 1.13, numpy, h5py
[ -x build/venv/bin/python ] && run_pytest build/venv/bin/python   # dm_control, gym-pusht, gymnasium
if [ -x build/venv-theseus/bin/python ]; then                      # opt-in: DT_THESEUS=1
  OMP_WAIT_POLICY=PASSIVE run_pytest build/venv-theseus/bin/python
fi
echo "== all tests passed"
