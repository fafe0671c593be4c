#!/usr/bin/env bash
# The CUDA backend without a GPU (CI runs it after scripts/test.sh): builds ./build-sim with
# WERSA_CUDA=SIM (every .cu compiled by the host compiler and run on the CUDA simulator,
# src/backend/sim) and runs the tests labelled `cuda` (test_backend_ops and the simulator's own
# tests) once per schedule of the simulated threads: seq, then rand (seeded), then rev. Then a
# build without CUDA (./build-cpu, WERSA_CUDA=OFF) of the libraries, so the CPU-only stubs still
# build. The whole-model tests (test_cuda_model, named Cuda*) and the tools on the device
# (test_cuda_tools, CudaTools.*) run once, under `rand`: their
# kernels are test_backend_ops's, which every schedule runs. Arguments go to ctest. Environment: WERSA_SIM_SCHEDULES (default "seq rand rev"),
# WERSA_SIM_SEED (default 1). Like scripts/test.sh, it fails on a skipped test that
# tests/allowed-skips.txt does not allow, on a test past its timeout and on no tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"
if [ ! -f build-sim/CMakeCache.txt ]; then
  cmake -S . -B build-sim "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DWERSA_CUDA=SIM
fi
t0=$SECONDS
# The cuda-labelled tests and what they link; the tools and the other tests are the CPU build's.
sim_tests=$(ls tests/sim/test_*.cu tests/sim/test_*.cpp 2>/dev/null | xargs -n1 basename | sed 's/\.[a-z]*$//')
cmake --build build-sim -j "$(nproc)" --target test_backend_ops test_cuda_model test_cuda_tools $sim_tests
echo "sim-test: build took $((SECONDS - t0)) s"
export OMP_WAIT_POLICY=PASSIVE
for s in ${WERSA_SIM_SCHEDULES:-seq rand rev}; do
  echo "sim-test: schedule $s"
  skip_model=(-E '^(Kinds/|Precision/)?Cuda(Training|Model|Checkpoints|Tools)')
  [ "$s" = rand ] && skip_model=()
  WERSA_SIM_SCHEDULE=$s WERSA_SIM_SEED=${WERSA_SIM_SEED:-1} bash scripts/ctest-checked.sh build-sim -L cuda \
    "${skip_model[@]}" --output-on-failure -j "$(nproc)" "$@"
done
if [ ! -f build-cpu/CMakeCache.txt ]; then
  cmake -S . -B build-cpu "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DWERSA_CUDA=OFF -DWERSA_TESTS=OFF
fi
t0=$SECONDS
cmake --build build-cpu -j "$(nproc)" --target wersa
echo "sim-test: CPU-only libraries built in $((SECONDS - t0)) s"
