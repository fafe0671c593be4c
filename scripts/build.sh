#!/usr/bin/env bash
# Configures and builds the engine into ./build (Release). Extra arguments, and the words of
# $WERSA_CMAKE_ARGS, go to cmake (e.g. -DWERSA_CUDA=OFF).
set -euo pipefail
cd "$(dirname "$0")/.."
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
read -r -a extra <<<"${WERSA_CMAKE_ARGS:-}"
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build "${gen[@]}" -DCMAKE_BUILD_TYPE=Release "${extra[@]}" "$@"
elif [ $# -gt 0 ] || [ ${#extra[@]} -gt 0 ]; then
  cmake -S . -B build "${extra[@]}" "$@"
fi
cmake --build build -j "$(nproc)"
