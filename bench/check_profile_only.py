"""Recompute Q2.3's profile-only baseline on the full data file, independently of common/, and compare it with
the committed figures/q2_3/profile_only.json.

    python bench/check_profile_only.py data/simulated/norm_data.txt figures/q2_3/profile_only.json

Written from the rules alone (pandas, collections.Counter and scipy; no loader, no tensors): SetA in file
order shuffled by numpy.random.RandomState(42), the first 20 % validation, the rest training; a protein's
profile is the z-scored (ddof 1) log2 enrichment of 5-mers (windows inside the first 41 nt, free of N;
pseudocount 1) in its top 1 % TRAINING probes by intensity against all its training probes; a probe's score is
the sum of the profile over its windows; Spearman over the probes with a measured intensity, the targets
clipped at the split's 99.95th percentile as the loader does (log and z-score change no rank). Exit 1 when a
Spearman differs from the committed one by more than 1e-6. About a minute per protein on one core.
"""
import itertools
import json
import sys
from collections import Counter

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

TOLERANCE = 1e-6


def windows(seq, k=5):
    seq = str(seq)[:41]
    return [seq[i:i + k] for i in range(len(seq) - k + 1) if set(seq[i:i + k]) <= set("ACGU")]


def main(norm_data, committed_path):
    df = pd.read_csv(norm_data, sep="\t")
    committed = json.load(open(committed_path))
    ids = dict(zip(committed["data"]["proteins"], committed["data"]["ids"]))
    seta = df[df.Probe_Set == "SetA"].reset_index(drop=True)
    setb = df[df.Probe_Set == "SetB"].reset_index(drop=True)
    perm = np.random.RandomState(42).permutation(len(seta))
    n_val = int(0.2 * len(seta))
    train = seta.iloc[perm[n_val:]].reset_index(drop=True)
    val = seta.iloc[perm[:n_val]].reset_index(drop=True)
    kmers = ["".join(t) for t in itertools.product("ACGU", repeat=5)]
    index = {k: i for i, k in enumerate(kmers)}
    train_windows = [windows(s) for s in train.RNA_Seq]
    worst = 0.0
    for name, column in ids.items():
        y = train[column].to_numpy(float)
        rows = np.flatnonzero(~np.isnan(y))
        top = rows[np.argsort(-y[rows], kind="stable")[:max(1, int(0.01 * len(rows)))]]
        in_top = Counter(w for i in top for w in train_windows[i])
        in_all = Counter(w for i in rows for w in train_windows[i])
        f_top = np.array([in_top[k] + 1.0 for k in kmers])
        f_all = np.array([in_all[k] + 1.0 for k in kmers])
        e = np.log2(f_top / f_top.sum()) - np.log2(f_all / f_all.sum())
        profile = (e - e.mean()) / e.std(ddof=1)
        ours = {}
        for split, frame in (("val", val), ("test", setb)):
            target = frame[column].to_numpy(float)
            keep = ~np.isnan(target)
            target = np.minimum(target, np.percentile(target[keep], 99.95))
            score = np.array([sum(profile[index[w]] for w in windows(s)) for s in frame.RNA_Seq])
            ours[split] = spearmanr(score[keep], target[keep]).statistic
        theirs = committed["proteins"][name]
        diff = max(abs(ours[s] - theirs[s]["spearman"]) for s in ("val", "test"))
        worst = max(worst, diff)
        print(f"{name:12s} val {ours['val']:.5f} (committed {theirs['val']['spearman']:.5f})  test "
              f"{ours['test']:.5f} (committed {theirs['test']['spearman']:.5f})  |difference| {diff:.1e}",
              flush=True)
    print(f"largest |difference| {worst:.1e} (tolerance {TOLERANCE:g})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.split("\n\n")[1].strip())
    raise SystemExit(main(*sys.argv[1:]))
