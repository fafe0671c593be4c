#!/usr/bin/env bash
# Sanitizer and fuzzing check (CI runs it after scripts/test.sh). Builds ./build-san with clang:
# ASan + UBSan on every library, tool and test (WERSA_SANITIZE) and the libFuzzer targets of
# tests/fuzz (WERSA_FUZZ), with the CUDA backend on the CUDA simulator (WERSA_CUDA=SIM), so the
# CUDA kernels' tests run under the sanitizers too; runs the whole ctest suite under the sanitizers; then fuzzes each
# target for a bounded time, starting from its seeds and regression inputs. Any test failure,
# sanitizer report or fuzzing finding fails the script, and so does a test past its timeout or a
# skipped test that tests/allowed-skips.txt does not allow (scripts/ctest-checked.sh); a finding's
# reproducer path is printed.
# Arguments go to ctest. Environment:
#   WERSA_FUZZ_SECONDS  seconds of fuzzing per target (default 30; 0 skips fuzzing)
#   WERSA_FUZZ_TARGETS  names to fuzz (default: every tests/fuzz/fuzz_NAME.cpp)
#   WERSA_FUZZ_RSS_MB   libFuzzer memory limit per target (default 2048)
#   WERSA_FUZZ_TIMEOUT  seconds one input may take before it counts as a hang (default 10)
#   WERSA_SAN_EXCLUDE   ctest -E regex of tests left out under the sanitizers (default: the 20-step
#                       training curves of test_cuda_model and its resume runs, fp32 and bf16,
#                       whose kernels and code paths the other test_cuda_model tests and
#                       test_backend_ops run here, and the tools with --device cuda
#                       (test_cuda_tools: child processes over the same paths); "" runs everything)
#   WERSA_FUZZ_SEED     libFuzzer's -seed (default 1, so a CI run is repeatable: the same
#                       mutations in the same order; 0 picks a new one each run, for longer hunts)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/setup.sh
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
if [ ! -f build-san/CMakeCache.txt ]; then
  cmake -S . -B build-san "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_COMPILER=clang++ -DWERSA_SANITIZE=ON -DWERSA_FUZZ=ON -DWERSA_CUDA=SIM
fi
t0=$SECONDS
cmake --build build-san -j "$(nproc)"
echo "sanitize: build took $((SECONDS - t0)) s"

# Leaks, UB and memory errors all stop the process with a stack trace (callers may override).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:print_stacktrace=1:check_initialization_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$root/scripts/lsan.supp:print_suppressions=0}"
export OMP_WAIT_POLICY=PASSIVE
# The simulator's threads in launch order: with the sanitizers this is CI's seq-schedule run of the
# CUDA tests (.ci/run runs the rand and rev schedules in scripts/sim-test.sh).
export WERSA_SIM_SCHEDULE=${WERSA_SIM_SCHEDULE:-seq}
echo "sanitize: CUDA simulator schedule $WERSA_SIM_SCHEDULE"

t0=$SECONDS
exclude=${WERSA_SAN_EXCLUDE-CudaTraining(Resume)?\.|CudaTools\.}
bash scripts/ctest-checked.sh build-san --output-on-failure -j "$(nproc)" ${exclude:+-E "$exclude"} "$@"
echo "sanitize: sanitized ctest took $((SECONDS - t0)) s"

secs=${WERSA_FUZZ_SECONDS:-30}
[ "$secs" -gt 0 ] || exit 0
names=()
if [ -n "${WERSA_FUZZ_TARGETS:-}" ]; then
  read -r -a names <<<"$WERSA_FUZZ_TARGETS"
else
  for src in tests/fuzz/fuzz_*.cpp; do
    n=${src##*/fuzz_}
    names+=("${n%.cpp}")
  done
fi
failed=()
for name in "${names[@]}"; do
  bin=build-san/tests/fuzz/fuzz_$name
  src=tests/fuzz/fuzz_$name.cpp
  if [ ! -x "$bin" ]; then
    echo "sanitize: $bin was not built (is '$name' in WERSA_FUZZ_TARGETS of tests/fuzz/CMakeLists.txt?)"
    failed+=("$name")
    continue
  fi
  # Per-target options from the source's "// libfuzzer-options:" line (e.g. -max_len).
  read -r -a opts <<<"$(sed -n 's#^// libfuzzer-options:##p' "$src")"
  work=build-san/fuzz/$name
  mkdir -p "$work/corpus" "$work/artifacts"
  dirs=("$work/corpus")  # new inputs go to the first directory; the others are only read
  for d in "tests/fuzz/seeds/$name" "tests/fuzz/regressions/$name"; do
    [ -d "$d" ] && dirs+=("$d")
  done
  log=$work/fuzz.log
  echo "sanitize: fuzzing $name for $secs s (${opts[*]})"
  rc=0
  # One thread: the fuzzer is the parallelism; OpenMP regions in the readers stay serial.
  OMP_NUM_THREADS=1 "$bin" "${opts[@]}" -max_total_time="$secs" -rss_limit_mb="${WERSA_FUZZ_RSS_MB:-2048}" \
    -timeout="${WERSA_FUZZ_TIMEOUT:-10}" -seed="${WERSA_FUZZ_SEED:-1}" -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
    "${dirs[@]}" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$log"
    echo "sanitize: fuzz_$name FAILED (exit $rc); log $root/$log"
    for a in "$work"/artifacts/*; do
      [ -e "$a" ] || continue
      echo "  reproducer: $root/$a"
      echo "    replay:   $bin $a"
      echo "    minimise: $bin -minimize_crash=1 -runs=100000 -exact_artifact_path=tests/fuzz/regressions/$name/NAME $a"
    done
    failed+=("$name")
  else
    echo "sanitize: fuzz_$name ok (${runs:-?} inputs in $secs s)"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "sanitize: fuzzing found problems in: ${failed[*]}"
  exit 1
fi
echo "sanitize: all fuzz targets ran clean"
