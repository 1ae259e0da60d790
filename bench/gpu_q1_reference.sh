#!/usr/bin/env bash
# The full 200-epoch Q1 protocol on one GPU, 3 seeds x 2 variants x 2 questions (how figures/q1_1 and
# figures/q1_2 were made). Run from the repo root with the npz at data/bloodmnist_pbc.npz (or set
# BLOODMNIST_NPZ). Seed 0 logits of each question runs alone first, so its seconds are solo timings;
# the other 10 runs then share the GPU, and their metrics.json say so in config.note.
set -u
export BLOODMNIST_NPZ=${BLOODMNIST_NPZ:-data/bloodmnist_pbc.npz} PYTHONUNBUFFERED=1
OUTDIR=${1:-figures}; RUNS=${RUNS:-/tmp/runs}; mkdir -p logs
common="--checkpoint-every 50 --out-dir $OUTDIR --run-dir $RUNS --force"
python3 q1_1_cnn.py --variant logits --seeds 0 $common > logs/q1_1_logits_0.log 2>&1
python3 q1_2_maxpool.py --variant logits --seeds 0 $common > logs/q1_2_logits_0.log 2>&1
note="shared the GPU with 9 other runs; seconds are not solo timings"
for q in q1_1_cnn q1_2_maxpool; do
  for vs in "logits 1" "logits 2" "softmax 0" "softmax 1" "softmax 2"; do
    set -- $vs
    timeout ${LIMIT:-3600} python3 $q.py --variant $1 --seeds $2 $common --note "$note" > logs/${q}_$1_$2.log 2>&1 &
  done
done
wait
