#!/usr/bin/env bash
# One command for a GPU machine: the CUDA tests on the GPU, a short training run compared with the
# CPU's losses, and the benchmarks, with every log and a summary table under OUT_DIR.
#
#   bash scripts/gpu-check.sh OUT_DIR          on a GPU machine
#   bash scripts/gpu-check.sh --sim OUT_DIR    the same steps at tiny shapes on the CUDA simulator
#                                              (./build-sim; CI runs it, so the script is tested)
#
# The binaries: on a GPU machine a bundle made beforehand by scripts/gpu-bundle.sh
# (gpu-bundle.tar.xz or gpu-bundle/ in the repository root, or $WERSA_BUNDLE), else ./build when it
# holds a CUDA build (a bare GPU machine has none of the Debian packages needed to build here). The
# GPU's cuBLAS and CUDA runtime come from the machine's CUDA toolkit (/usr/local/cuda) or, where
# that lacks them, from PyTorch's nvidia-* packages.
# Writes OUT_DIR/summary.md (printed at the end) and OUT_DIR/logs.tar.gz (each step's log and JSON).
# Exit status: 0 when every step passed, 1 otherwise. Each step has a time limit; the whole run is
# planned for at most 8 minutes on a GPU (WERSA_GPU_CHECK_SCALE=0.5 halves every limit).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mode=gpu
if [ "${1:-}" = --sim ]; then
  mode=sim
  shift
fi
if [ $# -ne 1 ]; then
  echo "usage: bash scripts/gpu-check.sh [--sim] OUT_DIR" >&2
  exit 2
fi
out=$(mkdir -p "$1" && cd "$1" && pwd) || {
  echo "error: $1: cannot create the output directory" >&2
  exit 2
}
logs=$out/logs
rm -rf "$logs" "$out/summary.md" "$out/logs.tar.gz"
mkdir -p "$logs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
t_start=$SECONDS
scale=${WERSA_GPU_CHECK_SCALE:-1}

# ---- the binaries ---------------------------------------------------------------------------
bin=
if [ $mode = sim ]; then
  [ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"
  gen=()
  command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
  if [ ! -f build-sim/CMakeCache.txt ]; then
    cmake -S . -B build-sim "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DWERSA_CUDA=SIM >"$logs/build.log" 2>&1 || {
      echo "error: configuring build-sim failed (see $logs/build.log)" >&2
      exit 1
    }
  fi
  cmake --build build-sim -j "$(nproc)" --target wersa-train wersa-eval wersa-bench wersa-server \
    test_backend_ops test_cuda_model >>"$logs/build.log" 2>&1 || {
    tail -20 "$logs/build.log" >&2
    echo "error: building build-sim failed" >&2
    exit 1
  }
  bin=$root/build-sim
  tests=$root/build-sim/tests
else
  bundle=${WERSA_BUNDLE:-}
  if [ -z "$bundle" ] && [ -f gpu-bundle.tar.xz ]; then
    tar -xJf gpu-bundle.tar.xz -C "$work" && bundle=$work/gpu-bundle
  elif [ -z "$bundle" ] && [ -d gpu-bundle/bin ]; then
    bundle=$root/gpu-bundle
  fi
  if [ -n "$bundle" ]; then
    bin=$bundle/bin
    tests=$bundle/bin
  elif [ -x build/wersa-train ] && [ -x build/tests/test_cuda_model ]; then
    bin=$root/build
    tests=$root/build/tests
  else
    echo "error: no binaries: make a bundle on a build machine (bash scripts/gpu-bundle.sh) and bring" \
      "gpu-bundle.tar.xz here, or build ./build with -DWERSA_CUDA=ON" >&2
    exit 1
  fi
  libs=()
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && libs+=("$d")
  done
  if command -v python3 >/dev/null 2>&1; then  # PyTorch's copies of cuBLAS and the CUDA runtime
    while IFS= read -r d; do [ -d "$d" ] && libs+=("$d"); done < <(python3 - 2>/dev/null <<'EOF'
import glob, os, site
for s in site.getsitepackages():
    for d in sorted(glob.glob(os.path.join(s, "nvidia", "*", "lib"))) + sorted(glob.glob(os.path.join(s, "nvidia", "cu*", "lib"))):
        print(d)
EOF
    )
  fi
  export LD_LIBRARY_PATH="$(IFS=:; echo "${libs[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  { nvidia-smi 2>&1 || true; ldd "$bin/wersa-train" 2>&1; } >"$logs/machine.log"
  if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    echo "error: no GPU here (nvidia-smi lists none): the CUDA tests would skip; use --sim without one" >&2
    exit 1
  fi
fi
export OMP_WAIT_POLICY=PASSIVE
[ $mode = sim ] && export WERSA_SIM_SCHEDULE=${WERSA_SIM_SCHEDULE:-rand}

# ---- steps ------------------------------------------------------------------------------------
rows=()
failed=0
# step NAME LIMIT_SECONDS COMMAND...: runs it with its output in logs/NAME.log, and a row.
step() {
  local name=$1 limit
  limit=$(awk -v s="$2" -v k="$scale" 'BEGIN { printf "%d", s * k + 0.5 }')
  shift 2
  local t0=$SECONDS rc
  echo "gpu-check: $name (limit ${limit} s)" >&2
  timeout --kill-after=10 "$limit" "$@" >"$logs/$name.log" 2>&1
  rc=$?
  local took=$((SECONDS - t0)) result=pass
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    result="FAIL (over ${limit} s)"
  elif [ $rc -ne 0 ]; then
    result="FAIL (exit $rc)"
  fi
  [ "$result" = pass ] || failed=1
  rows+=("| $name | $result | $took |")
  return 0
}
note=()  # figures for the summary, one line each

# 1. Every op's CUDA kernel against its CPU kernel, on the device (the simulator: a handful).
if [ $mode = sim ]; then
  step backend-ops 300 "$tests/test_backend_ops" \
    --gtest_filter='Ops/Coverage.*:BackendOpsRun.*:Ops/BackendOps.CudaMatchesCpu/*_f32_n7*'
else
  step backend-ops 200 "$tests/test_backend_ops"
fi
note+=("backend ops: $(grep -E '^\[  (PASSED|FAILED)  \]' "$logs/backend-ops.log" | head -2 | tr '\n' ' ')")

# 2. The whole model on the device against the CPU (training curves, resume, decode, padding).
if [ $mode = sim ]; then
  step cuda-model 400 "$tests/test_cuda_model" \
    --gtest_filter='CudaModel.DecodeAndChunkedPrefillReproduceTheForward:CudaModel.ClassifierLogitsDoNotDependOnThePaddedBatch'
else
  step cuda-model 150 "$tests/test_cuda_model"
fi
note+=("whole-model tests: $(grep -E '^\[  (PASSED|FAILED)  \]' "$logs/cuda-model.log" | head -2 | tr '\n' ' ')")

# 3. A short training run on both devices, on text of this repository, losses compared step by step.
cat README.md docs/*.md >"$work/corpus.txt"
if [ $mode = sim ]; then
  train_sets=(--set train.steps=4 --set train.warmup_steps=1 --set train.seq_len=32 --set train.batch_size=2)
else
  train_sets=(--set train.steps=20)
fi
for dev in cpu cuda; do
  step "train-$dev" 120 "$bin/wersa-train" --config configs/tiny.json "${train_sets[@]}" \
    --set "data.train=$work/corpus.txt" --set data.val= --set train.eval_every=0 --set train.log_every=1 \
    --device "$dev" --out "$work/run-$dev"
  cp "$work/run-$dev/metrics.jsonl" "$logs/train-$dev.metrics.jsonl" 2>/dev/null
done
losses() { grep -o '"loss":[^,}]*' "$1" 2>/dev/null | cut -d: -f2; }
cmp_result=$(paste <(losses "$work/run-cpu/metrics.jsonl") <(losses "$work/run-cuda/metrics.jsonl") | awk '
  { n++; d = $1 - $2; if (d < 0) d = -d; r = d / ($1 < 0 ? -$1 : $1); if (r > m) m = r; if ($2 == "" || $1 != $1 + 0) bad = 1 }
  END { if (n == 0 || bad) print "none"; else printf "%d %.3g\n", n, m }')
if [ "$cmp_result" = none ] || [ -z "$cmp_result" ]; then
  rows+=("| train-compare | FAIL (no losses to compare) | 0 |")
  failed=1
else
  read -r nsteps maxrel <<<"$cmp_result"
  if awk -v m="$maxrel" 'BEGIN { exit !(m <= 1e-4) }'; then
    rows+=("| train-compare | pass | 0 |")
  else
    rows+=("| train-compare | FAIL (largest relative difference $maxrel > 1e-4) | 0 |")
    failed=1
  fi
  note+=("training: $nsteps steps of configs/tiny.json, CUDA vs CPU losses, largest relative difference $maxrel (limit 1e-4)")
fi

# 3b. The server on the device (wersa-server --device cuda, started by wersa-bench serve) under
#     concurrent streaming clients, on the checkpoint the device just trained: every request must
#     be answered (the benchmark exits 1 on an error); its throughput goes to the notes.
if [ $mode = sim ]; then
  serve_sets=(--clients 2 --requests 2 -n 16 -p 8)
else
  serve_sets=(--clients 8 --requests 2 -n 128 -p 32)
fi
step serve 120 "$bin/wersa-bench" serve -m "$work/run-cuda" "${serve_sets[@]}" --server-arg=--device=cuda \
  --json "$logs/serve.json"
note+=("server on the device ($(grep -o 'on cuda' "$logs/serve.log" | head -1)): $(grep -E '^aggregate' "$logs/serve.log" | head -1)")

# 4. Training throughput and device memory: configs/base.json at T=4096, and per-token memory at
#    long T (131,072 tokens in one sequence, recomputation), against the GEMM rate of the same run.
if [ $mode = sim ]; then
  step bench-train 300 "$bin/wersa-bench" train --device cuda --config configs/tiny.json -T 32,64 -b 1 -r 1 \
    --warmup 0 --gemm-size 64 --no-forward --set train.precision=bf16 --json "$logs/bench-train.json"
  step bench-long 300 "$bin/wersa-bench" train --device cuda --config configs/tiny.json -T 64,128 -b 1 -r 1 \
    --warmup 0 --gemm-size 64 --no-forward --recompute --json "$logs/bench-long.json"
else
  step bench-train 120 "$bin/wersa-bench" train --device cuda --config configs/base.json -T 4096 -b 4 -r 5 \
    --set train.precision=bf16 --json "$logs/bench-train.json"
  step bench-long 150 "$bin/wersa-bench" train --device cuda --config configs/base.json -T 16384,131072 -b 1 \
    -r 2 --recompute --no-forward --json "$logs/bench-long.json"
fi
# 5. The attention layer (its ops' device time, forward + backward, per layer) against PyTorch's
#    scaled_dot_product_attention on the same shapes, and its time per token from 4k to 128k.
if [ $mode = sim ]; then
  step bench-attention 300 "$bin/wersa-bench" train --device cuda --ops --config configs/tiny.json -T 32,64 -b 1 \
    -r 1 --warmup 0 --gemm-size 32 --no-forward --json "$logs/bench-attention.json"
  shape=(--heads 4 --head-dim 16 --layers 2)
else
  step bench-attention 180 "$bin/wersa-bench" train --device cuda --ops --config configs/base.json \
    -T 4096,16384,65536,131072 -b 1 -r 2 --no-forward --json "$logs/bench-attention.json"
  shape=(--heads 12 --head-dim 64 --layers 6)
fi
if command -v python3 >/dev/null 2>&1; then
  step attention-compare 120 python3 scripts/attention-compare.py "$logs/bench-attention.json" "${shape[@]}" \
    --json "$logs/attention.json"
  cp "$logs/attention-compare.log" "$work/attention.md"
else
  rows+=("| attention-compare | skipped (no python3) | 0 |")
fi
for f in bench-train bench-long; do
  sed -n '/^| model/,/^$/p' "$logs/$f.log" >>"$work/bench-tables.md"
done

# 6. Decoding: tg128 at depth 0 and 32,768 (the state does not grow, so neither should the time).
if [ $mode = sim ]; then
  step bench-decode 300 "$bin/wersa-bench" --device cuda --config configs/tiny.json -p 16 -n 8 -d 0,64 -r 1 \
    --bw-mib 8 --json "$logs/bench-decode.json"
else
  step bench-decode 120 "$bin/wersa-bench" --device cuda --config configs/base.json -p 512 -n 128 -d 0,32768 \
    -r 3 -b 4096 --json "$logs/bench-decode.json"
fi
grep -E 'tg[0-9]+ @ d|memory bandwidth' "$logs/bench-decode.log" >>"$work/decode-lines.txt"

# 7. The issue's performance targets, judged from the benchmarks' JSON (reported, not part of the
#    exit status, which is about correctness).
if command -v python3 >/dev/null 2>&1; then
  python3 scripts/gpu-targets.py $([ $mode = sim ] && echo --sim) "$logs" >"$work/targets.md" 2>"$logs/targets.log" ||
    echo "gpu-targets.py failed (see logs/targets.log)" >"$work/targets.md"
fi

# ---- summary ------------------------------------------------------------------------------------
{
  echo "# gpu-check ($mode) $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  if [ $mode = gpu ]; then
    echo "GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"
  else
    echo "CUDA simulator (schedule $WERSA_SIM_SCHEDULE), $(nproc) CPU cores: tiny shapes, no timing meaning"
  fi
  echo "binaries: $bin ($("$bin/wersa-train" --version 2>/dev/null | head -1))"
  echo
  echo "| step | result | seconds |"
  echo "| --- | --- | ---: |"
  printf '%s\n' "${rows[@]}"
  echo
  printf -- '- %s\n' "${note[@]}"
  echo
  [ -s "$work/targets.md" ] && { cat "$work/targets.md"; echo; }
  [ -s "$work/bench-tables.md" ] && cat "$work/bench-tables.md"
  [ -s "$work/attention.md" ] && { echo; cat "$work/attention.md"; }
  [ -s "$work/decode-lines.txt" ] && { echo; sed 's/^/    /' "$work/decode-lines.txt"; }
  echo
  echo "total: $((SECONDS - t_start)) s; $([ $failed = 0 ] && echo 'every step passed' || echo 'SOME STEPS FAILED')"
} >"$out/summary.md"
cp "$out/summary.md" "$logs/"
tar -czf "$out/logs.tar.gz" -C "$out" logs && rm -rf "$logs"
cat "$out/summary.md"
exit $failed
