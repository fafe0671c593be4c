#!/bin/bash
# a few real steps of one kind at one length with the long spec's settings, as run on 2026-12-07 (paths of that session); $1 kind, $2 T, $3 steps
cd /work/wt-arxiv
out=/work/runs-arxiv/pilot/$1-$2
rm -rf $out
/work/runs-arxiv/bin/wersa-train --config configs/arxiv11-classify.json \
  --set model.vocab_size=8192 --set model.attention.causal=false --set data.tokenizer=runs/arxiv-bpe/tokenizer.model \
  --set data.truncate=head_tail --set train.batch_size=8 --set train.lr=1e-3 --set train.min_lr=1e-4 \
  --set train.warmup_steps=1 --set train.steps=$3 --set train.eval_every=0 --set train.checkpoint_every=0 \
  --set train.log_every=1 --set model.attention.type=$1 --set train.seq_len=$2 --set train.seed=1234 \
  --max-memory 12G --out $out > $out.log 2>&1
echo "exit $?" >> $out.log
