#!/bin/bash
# The long classification protocol in the order of PLAN.md, one piece after the other. Run it from
# the repository root; run it again to continue after any interruption (finished runs are kept,
# an interrupted run continues from its newest checkpoint). OUT defaults to /work/runs-arxiv/exp-long,
# the tools to build/ (WERSA_BIN=DIR to run a copy that a rebuild cannot change).
set -u
# The rows finished on earlier machines (the results.json committed beside this script) count as
# finished in a new OUT (wersa-experiment --import).
KEPT=docs/results/arxiv11-long-2026-12-07/results.json
OUT=${1:-/work/runs-arxiv/exp-long}
BIN=${WERSA_BIN:-build}
SPEC=configs/experiments/longdoc-arxiv11-long.json
for only in 'wersa-4096*,linear-4096*' 'wersa-1024*,linear-1024*,softmax-1024*' 'wersa-16384*,linear-16384*'; do
  nice -n 19 "$BIN/wersa-experiment" "$SPEC" -o "$OUT" --only "$only" --progress-every 120 --import "$KEPT" || exit $?
done
