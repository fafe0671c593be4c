#!/usr/bin/env bash
# Runs ctest in a build directory and fails on what ctest alone lets pass: no tests at all
# (--no-tests=error), and any test that did not run to its end: skipped (a GTEST_SKIP, which
# gtest_discover_tests of CMake >= 3.25 reports as skipped, or a missing resource), disabled or
# not run. A test past its TIMEOUT (tests/CMakeLists.txt) is a failure of ctest itself.
# Skips by design are listed in tests/allowed-skips.txt (one line each: a condition, an
# extended regex of test names, and the reason): where their condition holds, those tests are
# left out of the run (and listed) instead of skipping; nothing may skip.
# Usage: scripts/ctest-checked.sh BUILD_DIR [ctest arguments...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: ctest-checked.sh BUILD_DIR [ctest arguments]}
shift
cd "$build"
junit=$PWD/Testing/ctest-checked.xml
mkdir -p Testing
rm -f "$junit"

# The conditions of tests/allowed-skips.txt.
# gpu: the build has a CUDA device to run on: a GPU is listed and the build has a real CUDA
# backend, or the build is a simulator build (WERSA_CUDA=SIM: the device is the simulator); a
# CPU-only build has none.
gpu=no
if grep -q '^WERSA_CUDA:STRING=SIM' CMakeCache.txt 2>/dev/null; then
  gpu=yes
elif ! grep -q '^WERSA_CUDA:STRING=OFF' CMakeCache.txt 2>/dev/null && command -v nvidia-smi >/dev/null 2>&1 &&
  nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
  gpu=yes
fi
shared=yes
[ -d "$root/../shared/data" ] || shared=no
asan=no
grep -q '^WERSA_SANITIZE:BOOL=ON' CMakeCache.txt 2>/dev/null && asan=yes
applies() {
  case "$1" in
    always) return 0 ;;
    no-gpu) [ "$gpu" = no ] ;;
    no-asan) [ "$asan" = no ] ;;
    asan) [ "$asan" = yes ] ;;
    no-shared) [ "$shared" = no ] ;;
    *)
      echo "ctest-checked: unknown condition '$1' in tests/allowed-skips.txt" >&2
      exit 1
      ;;
  esac
}
allowed=()
while read -r cond regex _; do
  [ -z "$cond" ] || [ "${cond:0:1}" = "#" ] && continue
  applies "$cond" && allowed+=("$regex")
done <"$root/tests/allowed-skips.txt"

# The tests that cannot run here by design are left out of the run (and listed), not skipped:
# ctest's summary then counts no skipped test. A caller's -E regex is joined to theirs.
args=()
exclude=""
while [ $# -gt 0 ]; do
  if [ "$1" = -E ] || [ "$1" = --exclude-regex ]; then
    exclude=$2
    shift 2
    continue
  fi
  args+=("$1")
  shift
done
by_design=$(IFS='|'; echo "${allowed[*]}")
if [ -n "$by_design" ]; then
  left_out=()
  while IFS= read -r name; do
    for re in "${allowed[@]}"; do
      if [[ "$name" =~ $re ]]; then
        left_out+=("$name")
        break
      fi
    done
  done < <(ctest -N "${args[@]}" ${exclude:+-E "$exclude"} | sed -n 's/^ *Test *#[0-9]*: //p')
  if [ ${#left_out[@]} -gt 0 ]; then
    echo "ctest-checked: ${#left_out[@]} tests left out here by design (tests/allowed-skips.txt; gpu=$gpu, asan=$asan, ../shared/data=$shared):"
    printf '  %s\n' "${left_out[@]}"
  fi
  exclude="${exclude:+$exclude|}$by_design"
fi
rc=0
ctest --no-tests=error --output-junit "$junit" "${args[@]}" ${exclude:+-E "$exclude"} || rc=$?
[ -f "$junit" ] || {
  echo "ctest-checked: ctest wrote no report ($junit)"
  exit 1
}

# Every test case that ctest did not run to its end (its JUnit status: notrun for skipped and not run,
# disabled for disabled), one name a line.
not_run=$(sed -n 's/.*<testcase name="\([^"]*\)".* status="\([a-z]*\)".*/\2 \1/p' "$junit" |
  awk '$1 == "notrun" || $1 == "disabled" { sub(/^[a-z]+ /, ""); print }')
unexpected=()
n_allowed=0
while IFS= read -r name; do
  [ -n "$name" ] || continue
  ok=no
  for re in "${allowed[@]}"; do
    if [[ "$name" =~ $re ]]; then
      ok=yes
      break
    fi
  done
  if [ "$ok" = yes ]; then
    n_allowed=$((n_allowed + 1))
  else
    unexpected+=("$name")
  fi
done <<<"$not_run"
[ "$n_allowed" -gt 0 ] && echo "ctest-checked: $n_allowed skips allowed by tests/allowed-skips.txt (gpu=$gpu, asan=$asan, ../shared/data=$shared)"
if [ ${#unexpected[@]} -gt 0 ]; then
  echo "ctest-checked: ${#unexpected[@]} tests did not run (skipped, disabled or not run) and are not allowed to:"
  printf '  %s\n' "${unexpected[@]}"
  exit 1
fi
exit "$rc"
