#!/usr/bin/env bash
# Step time of configs/tiny.json and configs/bench-cpu.json on an idle machine and beside one
# CPU-bound process (a shell busy loop), for each libgomp waiting setting; prints a markdown table.
# Needs an otherwise idle machine, a build in build/ (or BUILD=dir) and ../shared/data.
# Usage: bash scripts/busy-bench.sh [tiny_steps [bench_steps]]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
tiny_steps=${1:-200}
bench_steps=${2:-8}
work=runs/busy-bench
data=$work/data
corpus=../shared/data/arxiv-unlabeled.jsonl.xz
[ -x "$build/wersa-train" ] || { echo "error: $build/wersa-train not found (run scripts/build.sh)" >&2; exit 1; }
mkdir -p "$work"
if [ ! -f "$data/dataset.json" ]; then
  [ -f "$corpus" ] || { echo "error: $corpus not found (this benchmark needs the team's shared data)" >&2; exit 1; }
  "$build/wersa-tokenize" encode --tokenizer byte --input "$corpus" --out "$data" --val-fraction 0.01 \
    --overwrite --quiet
fi

# Median step time (ms) of a run's metrics.jsonl, steps after the second.
median_ms() {
  grep -o '"ms":[0-9.e+-]*,"step":[0-9]*' "$1/metrics.jsonl" | sed 's/"ms":\([^,]*\),"step":\(.*\)/\2 \1/' |
    awk '$1 > 2 { print $2 }' | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2];
      else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# train NAME CONFIG STEPS ENV...: one run, prints its median step time
train() {
  local name=$1 cfg=$2 steps=$3
  shift 3
  rm -rf "${work:?}/$name"
  env "$@" "$build/wersa-train" --config "$cfg" --out "$work/$name" --set "data.train=$data/train_*.bin" \
    --set data.val= --set train.steps="$steps" --set train.eval_every=0 --set train.checkpoint_every=0 \
    --set train.log_every=100000 >"$work/$name.log" 2>&1
  median_ms "$work/$name"
}

echo "| libgomp setting | configs/tiny.json idle / busy | ratio | configs/bench-cpu.json idle / busy | ratio |"
echo "| --- | ---: | ---: | ---: | ---: |"
for setting in GOMP_SPINCOUNT=300000 GOMP_SPINCOUNT=10000 GOMP_SPINCOUNT=1000 OMP_WAIT_POLICY=passive; do
  row="| $setting"
  for c in "tiny configs/tiny.json $tiny_steps" "bench configs/bench-cpu.json $bench_steps"; do
    read -r tag cfg steps <<<"$c"
    idle=$(train "$tag-idle" "$cfg" "$steps" "$setting")
    (while :; do :; done) &
    busy_pid=$!
    busy=$(train "$tag-busy" "$cfg" "$steps" "$setting")
    kill "$busy_pid"
    wait "$busy_pid" 2>/dev/null || true
    row="$row | $idle / $busy ms | $(awk -v a="$idle" -v b="$busy" 'BEGIN { printf "%.1fx", b / a }')"
  done
  echo "$row |"
done
