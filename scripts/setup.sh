#!/usr/bin/env bash
# Installs the Debian packages the engine builds against. Idempotent; needs root (or sudo).
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config nlohmann-json3-dev libcli11-dev libspdlog-dev
  libfmt-dev libsentencepiece-dev libopenblas-dev libopenblas-openmp-dev libgtest-dev libgmock-dev xz-utils zlib1g-dev
  liblzma-dev libcpp-httplib-dev clang-format gnuplot-nox  # gnuplot: wersa-experiment plots
  clang libclang-rt-14-dev libomp-dev llvm)  # scripts/sanitize.sh: sanitizer/libFuzzer runtimes, clang's OpenMP, llvm-symbolizer
pkgs+=(ccache)   # shared objects between build directories and rebuilds (CMake's WERSA_CCACHE)
pkgs+=(python3)  # scripts/attention-compare.py, scripts/gpu-targets.py and its test (tests/scripts)
pkgs+=(nodejs)  # tests/node: the official openai npm client against wersa-server
command -v npm >/dev/null 2>&1 || pkgs+=(npm)  # Debian's own package; NodeSource's nodejs has it built in
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
else
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# tests/node (ctest test_openai_client): the openai npm package at the version package-lock.json pins.
node_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/node"
if [ ! -f "$node_dir/node_modules/openai/package.json" ]; then
  echo "setup: npm ci in $node_dir"
  # Only test_openai_client needs it: without the npm registry the engine still builds and that
  # one test fails, saying to run this script.
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error) ||
    echo "setup: warning: npm ci in $node_dir failed (is the npm registry reachable?); test_openai_client will fail" >&2
fi
