"""Q2.2's comparisons, from the per-seed records: three measures of convergence and the test Spearman, each
arm against its baseline on the seeds both arms ran, with a Welch 95% CI.

Convergence, per run (validation Spearman per epoch, the selection metric):
  - the first epoch at each fixed threshold (censored where a run never reaches it: then no interval);
  - the mean validation Spearman over epochs 1-10, a continuous measure with no floor;
  - the first epoch at 90% and at 95% of the run's own best validation Spearman.
Seed 0 of the tuned setting is the Q2.1 search's own selected run (the best of its 20 trials on this
validation set), so it never enters a comparison (EXCLUDED_SEEDS) and is shown apart."""
from pathlib import Path

import numpy as np
from scipy import stats

from common.reporting.stats import paired_diff, welch_diff
from common.runfiles.records import load_runs

EARLY_EPOCHS = 10
THRESHOLDS = (0.50, 0.55, 0.58, 0.60, 0.62)   # fixed before the runs (q2_2_attention.py --thresholds)
OWN_BEST_FRACTIONS = (0.90, 0.95)
# experiment folder -> (setting label, seeds kept out of comparisons, and why)
EXPERIMENTS = {"q2_2_default": ("homework-default BiLSTM", (), ""),
               "q2_2": ("Q2.1-tuned BiLSTM", (0,), "seed 0 of mean pooling is the Q2.1 search's selected run "
                        "(seed 0 of the other arms is left out too, to keep the seeds paired)")}
# (arm, baseline) pairs, in the order they are reported
PAIRS = (("lstm_attention", "lstm"), ("lstm_attention_h2", "lstm"), ("lstm_attention_h4", "lstm"),
         ("lstm_self_attention", "lstm"), ("lstm_attention_h2", "lstm_attention"),
         ("lstm_attention_h4", "lstm_attention"), ("lstm_self_attention", "lstm_attention"))


def first_epoch_at(history, threshold):
    """The first epoch whose validation Spearman reaches threshold, or None if none does."""
    return next((h["epoch"] for h in history if h["val_spearman"] >= threshold), None)


def early_mean(history, epochs=EARLY_EPOCHS):
    """Mean validation Spearman over epochs 1..epochs (None if the run is shorter)."""
    vals = [h["val_spearman"] for h in history if h["epoch"] <= epochs]
    return float(np.mean(vals)) if len(vals) == epochs else None


def epochs_to_own_best(history, fraction):
    """The first epoch at fraction x the run's own best validation Spearman."""
    best = max(h["val_spearman"] for h in history)
    return first_epoch_at(history, fraction * best)


def convergence_measures(history, thresholds):
    """Every convergence measure of one run, keyed as in the comparisons."""
    out = {f"epochs to validation Spearman ≥ {t}": first_epoch_at(history, t) for t in thresholds}
    out[f"mean validation Spearman, epochs 1-{EARLY_EPOCHS}"] = early_mean(history)
    for f in OWN_BEST_FRACTIONS:
        out[f"epochs to {f:.0%} of the run's own best validation Spearman"] = epochs_to_own_best(history, f)
    return out


def arm_runs(exp_dir):
    """{folder: finished records sorted by seed} of an experiment folder."""
    out = {}
    for d in sorted(p for p in Path(exp_dir).iterdir() if p.is_dir()):
        recs = sorted((r for r in load_runs(d) if r.get("status") == "complete"), key=lambda r: r["seed"])
        if recs:
            out[d.name] = recs
    return out


def compare_arms(name, a, b, recs_a, recs_b, thresholds, excluded=()):
    """Rows for arm a − arm b on the seeds both ran (less the excluded): test Spearman and every convergence
    measure."""
    seeds = sorted({r["seed"] for r in recs_a} & {r["seed"] for r in recs_b} - set(excluded))
    ra = sorted((r for r in recs_a if r["seed"] in seeds), key=lambda r: r["seed"])
    rb = sorted((r for r in recs_b if r["seed"] in seeds), key=lambda r: r["seed"])
    if len(seeds) < 2:
        return []
    budgets = sorted({r["config"]["epochs"] for r in ra + rb})
    precisions = sorted({str(r["config"].get("precision")) for r in ra + rb})
    checksums = sorted({str(r.get("data", {}).get("checksum")) for r in ra + rb})
    mixed = (f"runs of different lengths (epochs {budgets}); rerun them to one protocol"
             if len(budgets) > 1 else
             f"runs in different precisions ({', '.join(precisions)}); rerun them in one"
             if len(precisions) > 1 else
             f"runs on different data (checksums {', '.join(c[:8] for c in checksums)})"
             if len(checksums) > 1 else None)
    label, *_ = EXPERIMENTS.get(name, (name,))
    base = {"comparison": f"Q2.2 ({label}): {a} vs {b}", "a": f"{name}/{a}", "b": f"{name}/{b}",
            "seeds_a": seeds, "seeds_b": seeds}
    uncomparable = {"ci95": None, "p": None, "significant": None}
    rows = [{**base, "metric": "test Spearman", **welch_diff([r["test"]["spearman"] for r in ra],
                                                             [r["test"]["spearman"] for r in rb])}]
    # the same seed gives both arms the same batch order and LSTM initialisation (the LSTMs are built first);
    # the pairing is partial: the attention layers are built before the MLP head, so the head's
    # initialisation and the dropout masks differ. The paired difference, beside the unpaired one
    rows.append({**base, "metric": "test Spearman, paired by seed (same batch order and LSTM init; head init "
                                   "and dropout masks differ)",
                 **paired_diff([r["test"]["spearman"] for r in ra], [r["test"]["spearman"] for r in rb])})
    for row in rows:
        if mixed:   # e.g. a protocol rerun halfway: the difference would mix the effect with the budget
            row.update(uncomparable, not_comparable=mixed)
        elif row.get("note"):   # no spread on either side
            row.update(not_comparable=row["note"])
    ma = [convergence_measures(r["history"], thresholds) for r in ra]
    mb = [convergence_measures(r["history"], thresholds) for r in rb]
    for key in ma[0]:
        va, vb = [m[key] for m in ma], [m[key] for m in mb]
        row = {**base, "metric": key, "values_a": va, "values_b": vb}
        never = [f"{arm} seed {s}" for arm, vals in ((a, va), (b, vb)) for s, v in zip(seeds, vals)
                 if v is None]
        if mixed:
            row.update(uncomparable, n_a=len(va), n_b=len(vb), diff=None, method="—", not_comparable=mixed)
        elif never and key.startswith("epochs to validation Spearman"):
            # censored at the budget: no difference of means, but how many reached it, and a rank test with
            # never-reached = budget + 1 (valid: every run had the same budget)
            ka, kb = sum(v is not None for v in va), sum(v is not None for v in vb)
            ca, cb = ([budgets[0] + 1 if v is None else v for v in vals] for vals in (va, vb))
            rank = stats.mannwhitneyu(ca, cb, alternative="two-sided") if len(set(ca + cb)) > 1 else None
            row.update(uncomparable, n_a=len(va), n_b=len(vb), diff=None, method="—",
                       reached_a=f"{ka}/{len(va)}", reached_b=f"{kb}/{len(vb)}",
                       rank_test={"method": f"Mann-Whitney U, never reached = epoch {budgets[0] + 1}",
                                  "p": None if rank is None else float(rank.pvalue)},
                       not_comparable=f"not reached within {budgets[0]} epochs by {', '.join(never)} "
                                      f"(reached: {a} {ka}/{len(va)}, {b} {kb}/{len(vb)}; rank test p = "
                                      f"{'—' if rank is None else f'{rank.pvalue:.2f}'})")
        elif None in va + vb:   # the early mean of runs shorter than its window
            row.update(uncomparable, n_a=len(va), n_b=len(vb), diff=None, method="—",
                       not_comparable=f"runs shorter than {EARLY_EPOCHS} epochs")
        else:
            row.update(welch_diff(va, vb))
            # every run the same epoch: no spread, and nothing to tell the arms apart
            if len(set(va + vb)) == 1:
                row.update(uncomparable, not_comparable=f"every run of both arms reaches it at epoch {va[0]} "
                                                        "(a floor, no spread)")
            elif row.get("note"):
                row.update(not_comparable=f"{row['note']} (a floor: {a} all {va[0]}, {b} all {vb[0]})")
        rows.append(row)
    return rows


def q2_2_comparisons(root, thresholds=THRESHOLDS):
    """Every Q2.2 comparison of both settings whose two arms have at least two common seeds."""
    out = []
    for name, (_, excluded, _) in EXPERIMENTS.items():
        exp = Path(root) / name
        if not exp.is_dir():
            continue
        runs = arm_runs(exp)
        for a, b in PAIRS:
            if a in runs and b in runs:
                out += compare_arms(name, a, b, runs[a], runs[b], thresholds, excluded)
    return out
