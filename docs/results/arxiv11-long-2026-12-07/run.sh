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
s2=seed1235 s3=seed1236
pieces=(
  "wersa-4096-seed1234,linear-4096-seed1234"
  "wersa-1024-seed1234,linear-1024-seed1234,softmax-1024-seed1234"
  "wersa-1024-$s2,linear-1024-$s2,softmax-1024-$s2,wersa-1024-$s3,linear-1024-$s3,softmax-1024-$s3"
  "wersa-4096-$s2,linear-4096-$s2,wersa-4096-$s3,linear-4096-$s3"
  "wersa-16384-seed1234,linear-16384-seed1234"
  "softmax-4096-seed1234,softmax-16384-seed1234"
)
for only in "${pieces[@]}"; do
  nice -n 19 "$BIN/wersa-experiment" "$SPEC" -o "$OUT" --only "$only" --progress-every 120 --import "$KEPT" || exit $?
done
