#!/usr/bin/env bash
# Q2.3's cap-sensitivity check (issue 28, item 5): the same protocol with at most 60 epochs instead of 30, so that
# the 10 records that ran to the 30-epoch cap (3 of them not converged) can stop on their own. Run it from a git
# worktree at a fixed commit, one training at a time:
#   git worktree add ../q23 HEAD --detach && cd ../q23 && nohup bench/q2_3_cap_queue.sh > q2_3_cap.log 2>&1 &
# A record of figures/q2_3 that stopped early before epoch 30 is what the 60-epoch protocol gives too: training
# is deterministic and the cap enters nothing but the end of the epoch loop. Such records are copied into
# figures/q2_3_cap60 and kept (--resume; summary.json lists them under kept_from_other_cap); the runs that
# reached the cap train again from epoch 1, to at most 60. Step 1 checks the copy rule first: it reruns one
# early-stopped record (seed 1, few-shot sim-SRSF1, stopped at 22) at the 60 cap in a scratch folder and
# compares its history with the committed one. Copy each finished figures/q2_3_cap60/seed<k>/ record into the
# main tree and commit it at once.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-python}
NOTE=${NOTE:-"calibrated default data; cap-sensitivity queue bench/q2_3_cap_queue.sh"}
SCRATCH=${SCRATCH:-/tmp/q2_3_capcheck}
early() { $PY -c "import json,sys; m = json.load(open('$1')); sys.exit(0 if m['status'] == 'complete' and m['stopped_early'] else 1)"; }
seed_folder() {   # copy every early-stopped record of figures/q2_3 (that the target lacks) under $1
  local f rel
  for f in figures/q2_3/seed*/seen/metrics.json figures/q2_3/seed*/single/*/metrics.json \
           figures/q2_3/seed*/fewshot/*/metrics.json; do
    rel=${f#figures/q2_3/}
    [ -e "$1/$rel" ] && continue
    early "$f" || continue
    mkdir -p "$(dirname "$1/$rel")" && cp "$f" "$1/$rel"
  done
}
echo "=== $(date -Is) step 1: the copy rule, seed 1 few-shot sim-SRSF1 rerun at the 60 cap in $SCRATCH"
rm -rf "$SCRATCH"
seed_folder "$SCRATCH/figures/q2_3_cap60"
rm "$SCRATCH/figures/q2_3_cap60/seed1/fewshot/sim-SRSF1/metrics.json"
$PY q2_3_multi_protein.py --epochs 60 --seeds 1 --holdout sim-SRSF1 --resume --out-dir "$SCRATCH/figures" \
    --run-dir "$SCRATCH/runs" --note "$NOTE; copy-rule check" > "$SCRATCH.log" 2>&1
echo "rc $?"
$PY - "$SCRATCH/figures/q2_3_cap60/seed1/fewshot/sim-SRSF1/metrics.json" \
    figures/q2_3/seed1/fewshot/sim-SRSF1/metrics.json <<'EOF'
import json, sys
new, old = (json.load(open(p)) for p in sys.argv[1:])
h = {k: max(abs(a[k] - b[k]) for a, b in zip(new["history"], old["history"]))
     for k in ("train_loss", "val_loss", "val_spearman")}
print(f"copy rule: epochs run {new['epochs_run']} vs {old['epochs_run']}, best epoch {new['best_epoch']} vs "
      f"{old['best_epoch']}, test Spearman {new['held_out_test']['spearman']:.6f} vs "
      f"{old['held_out_test']['spearman']:.6f}; largest |difference| per epoch {h}; devices "
      f"{new['device_name']} vs {old['device_name']}")
EOF
echo "=== $(date -Is) step 2: figures/q2_3_cap60, seeds 1-3"
seed_folder figures/q2_3_cap60
$PY q2_3_multi_protein.py --epochs 60 --resume --note "$NOTE"
echo "=== $(date -Is) queue done rc $?"
