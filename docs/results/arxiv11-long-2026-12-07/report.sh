#!/bin/bash
# Tables of every row finished so far, also while run.sh is running: the finished runs of OUT
# (their result.json, and metrics.jsonl for the curves) are copied into a scratch output directory,
# the rows committed beside this script are imported there (wersa-experiment --import; a run with
# its own result.json keeps it), and the tables and plots written there are copied here. Run it
# from the repository root: report.sh [OUT] (default /work/runs-arxiv/exp-long).
set -eu
OUT=${1:-/work/runs-arxiv/exp-long}
BIN=${WERSA_BIN:-build}
HERE=docs/results/arxiv11-long-2026-12-07
SPEC=configs/experiments/longdoc-arxiv11-long.json
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for r in "$OUT"/runs/*/; do
  [ -f "$r/result.json" ] || continue
  d="$TMP/rep/runs/$(basename "$r")"
  mkdir -p "$d"
  cp "$r/result.json" "$d/"
  [ -f "$r/metrics.jsonl" ] && cp "$r/metrics.jsonl" "$d/"
done
cp "$HERE/results.json" "$TMP/kept.json"
"$BIN/wersa-experiment" "$SPEC" -o "$TMP/rep" --report-only --import "$TMP/kept.json" > /dev/null 2> "$TMP/log" ||
  { cat "$TMP/log"; exit 1; }
cp "$TMP/rep/results.md" "$TMP/rep/results.csv" "$TMP/rep/results.json" "$HERE/"
mkdir -p "$HERE/plots" && cp "$TMP/rep/plots/"*.svg "$HERE/plots/" 2>/dev/null || true
