#!/usr/bin/env bash
# Q2.3's learned no-profile control at the 60-epoch cap (figures/q2_3_cap60, where every few-shot run stopped
# early): for each protein and seeds 1-3, the few-shot model trained with every protein's profile set to zero
# (noprofile/<protein>/: same model, weights, data, seed and stopping rule), so that it can only learn what the
# training proteins share. few-shot − control (paired over proteins) says what the profile adds. Run it from a
# git worktree at a fixed commit, one training at a time:
#   git worktree add ../q23c HEAD --detach && cd ../q23c && nohup bench/q2_3_control_queue.sh > control.log 2>&1 &
# The 39 committed cap-60 records are kept as they are (--resume, no checkpoint: never retrained); only the 18
# control records train. Copy each finished figures/q2_3_cap60/seed<k>/noprofile/ record into the main tree
# and commit it at once.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-python}
NOTE=${NOTE:-"calibrated default data; no-profile control queue bench/q2_3_control_queue.sh"}
echo "=== $(date -Is) Q2.3 cap 60: seeds 1-3, the no-profile control beside the kept records"
$PY q2_3_multi_protein.py --epochs 60 --resume --note "$NOTE"
echo "rc $?"
$PY -c "import json; a, b = (json.load(open(f'figures/{d}/profile_only.json'))['proteins'] for d in ('q2_3', 'q2_3_cap60')); print('profile-only baseline identical:', a == b)"
echo "=== $(date -Is) queue done"
