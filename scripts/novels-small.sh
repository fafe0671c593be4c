#!/usr/bin/env bash
# Recipe: ../shared/data/novels98.jsonl.xz -> SentencePiece tokenizer -> token shards (whole
# novels held out for validation) -> configs/small.json trained on them -> validation perplexity.
# Usage: bash scripts/novels-small.sh [extra wersa-train flags, e.g. --set train.steps=100]
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=../shared/data/novels98.jsonl.xz
[ -f "$corpus" ] || { echo "error: $corpus not found (this recipe needs the team's shared data)" >&2; exit 1; }
vocab=${VOCAB:-8192}
out=runs/novels-small
data=$out/data
bash scripts/setup.sh
bash scripts/build.sh
mkdir -p "$data"
echo "== 1/4 SentencePiece BPE tokenizer, vocabulary $vocab"
build/wersa-tokenize train --input "$corpus" --vocab-size "$vocab" --out "$data/tokenizer.model"
echo "== 2/4 token shards (2% of the tokens, in whole novels, for validation)"
build/wersa-tokenize encode --tokenizer "$data/tokenizer.model" --input "$corpus" --out "$data" \
  --val-fraction 0.02 --overwrite
build/wersa-tokenize stats --shards "$data/train_*.bin"
echo "== 3/4 training configs/small.json"
build/wersa-train --config configs/small.json --set model.vocab_size="$vocab" \
  --set "data.train=$data/train_*.bin" --set "data.val=$data/val_*.bin" --out "$out/run" "$@"
echo "== 4/4 validation perplexity of the final checkpoint (all held-out novels)"
build/wersa-eval --checkpoint "$out/run" --shards "$data/val_*.bin" --batch 8
