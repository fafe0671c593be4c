#!/usr/bin/env bash
# Newcomer's path: install, build, train configs/tiny.json on real English text, evaluate it.
# Text: the novels of ../shared/data/novels98.jsonl.xz when that folder exists, otherwise the
# licence texts every Debian system ships in /usr/share/common-licenses. Output: runs/tiny/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
data=runs/data/bytes
if [ -f ../shared/data/novels98.jsonl.xz ]; then
  input=../shared/data/novels98.jsonl.xz
else
  input=runs/data/licences
  bash scripts/licence-corpus.sh "$input"
fi
echo "== byte-level token shards from $input (whole documents held out for validation)"
build/wersa-tokenize encode --tokenizer byte --input "$input" --out "$data" --val-fraction 0.02 --overwrite
echo "== training configs/tiny.json"
build/wersa-train --config configs/tiny.json --set "data.train=$data/train_*.bin" --set "data.val=$data/val_*.bin" \
  --out runs/tiny
echo "== evaluating the final checkpoint on the held-out documents"
build/wersa-eval --checkpoint runs/tiny --shards "$data/val_*.bin" --max-tokens 100000
