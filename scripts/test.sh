#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test (ctest). This is the README's test command.
# It fails on a failing test, on one past its timeout, on no tests, and on any skipped test that
# tests/allowed-skips.txt does not allow (scripts/ctest-checked.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
bash scripts/ctest-checked.sh build --output-on-failure -j "$(nproc)" "$@"
