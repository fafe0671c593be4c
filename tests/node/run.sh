#!/usr/bin/env bash
# ctest test_openai_client: trains a tiny model 2 steps, starts wersa-server on a free port with an
# API key, runs openai_client.mjs (the official npm "openai" client, installed here by
# scripts/setup.sh at the version package-lock.json pins) against it, then stops the server with
# SIGTERM and requires exit 0. Usage: run.sh BUILD_DIR.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$1"
command -v node >/dev/null || { echo "error: node not found: run scripts/setup.sh" >&2; exit 1; }
[ -f "$here/node_modules/openai/package.json" ] ||
  { echo "error: $here/node_modules/openai missing: run scripts/setup.sh" >&2; exit 1; }
tmp="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
cat "$here/../../README.md" "$here/../../docs/"*.md > "$tmp/all.txt"
head -c 60000 "$tmp/all.txt" > "$tmp/train.txt"
"$bin/wersa-train" --config "$here/../../configs/tiny.json" --set train.steps=2 --set train.warmup_steps=1 \
  --set train.eval_every=0 --set data.val= --set "data.train=$tmp/train.txt" --out "$tmp/run" > "$tmp/train.log" 2>&1 ||
  { cat "$tmp/train.log"; exit 1; }
"$bin/wersa-server" -m "$tmp/run" --port 0 -t 1 --api-key sekret > "$tmp/out" 2> "$tmp/err" &
pid=$!
for _ in $(seq 600); do
  grep -q '^listening on http://' "$tmp/out" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/err"; exit 1; }
  sleep 0.1
done
url="$(sed -n 's/^listening on \(http:.*\)$/\1/p' "$tmp/out")"
[ -n "$url" ] || { echo "error: the server did not start"; cat "$tmp/err"; exit 1; }
rc=0
node "$here/openai_client.mjs" "$url" sekret || rc=$?
kill -TERM "$pid"
src=0
wait "$pid" || src=$?
pid=""
[ "$src" = 0 ] || { echo "error: the server exited $src after SIGTERM"; cat "$tmp/err"; exit 1; }
exit "$rc"
