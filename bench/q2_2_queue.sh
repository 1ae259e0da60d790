#!/usr/bin/env bash
# The Q2.2 protocol of issue 28 as one queue, one training at a time (run it from a git worktree at a fixed commit,
# so that edits in the main tree cannot reach a running job):
#   git worktree add ../q22 HEAD --detach && cd ../q22 && nohup bench/q2_2_queue.sh > q2_2_queue.log 2>&1 &
# Each step skips a run whose metrics.json is complete and continues an interrupted one from its checkpoint
# (--resume); copy each finished figures/q2_2*/<arm>/seed<k>/ into the main tree and commit it at once.
# fp32 is pinned for every run, so that arms and sessions (on CPUs with or without native bf16) share one precision.
# The tuned setting's seed 3 runs in bf16, as its seeds 0-2 did (on a CPU with native bf16: elsewhere it is slow).
set -u
cd "$(dirname "$0")/.."
PY=${PY:-python}
NOTE=${NOTE:-"calibrated default data; queue bench/q2_2_queue.sh"}
done_run() { $PY -c "import json,sys; sys.exit(0 if json.load(open('$1')).get('status') == 'complete' else 1)" 2>/dev/null; }
step() {   # experiment folder seed, then the script's arguments
  local exp=$1 folder=$2 seed=$3; shift 3
  if done_run "figures/$exp/$folder/seed$seed/metrics.json"; then echo "skip $exp/$folder seed $seed (complete)"; return; fi
  echo "=== $(date -Is) $exp/$folder seed $seed"
  $PY q2_2_attention.py --seeds "$seed" --epochs 50 --resume --note "$NOTE" "$@"
  echo "=== $(date -Is) $exp/$folder seed $seed rc $?"
}
D=(--setting default --precision fp32)
for s in 1 2 3 4 5; do   # item 1: the report's setting, mean vs 1-head attention pooling
  step q2_2_default lstm "$s" "${D[@]}" --variants lstm
  step q2_2_default lstm_attention "$s" "${D[@]}" --variants lstm_attention --heads 1
done
# item 2: heads and attention type, one variant's seeds 1-3 at a time (each variant reaches a comparison, n = 3,
# before the next starts)
for s in 1 2 3; do step q2_2_default lstm_attention_h2 "$s" "${D[@]}" --variants lstm_attention --heads 2; done
for s in 1 2 3; do step q2_2_default lstm_attention_h4 "$s" "${D[@]}" --variants lstm_attention --heads 4; done
for s in 1 2 3; do
  step q2_2_default lstm_self_attention "$s" "${D[@]}" --variants lstm_self_attention --self-attention-heads 4
done
# item 3: the tuned setting without the search's run (seeds 1, 2 exist)
step q2_2 lstm 3 --setting tuned --precision bf16 --variants lstm
step q2_2 lstm_attention 3 --setting tuned --precision bf16 --variants lstm_attention --heads 1
echo "=== $(date -Is) queue done"
