"""The softmax failure study's plain functions: classify a run's predictions, summarise seeds with
intervals."""
from pathlib import Path

import numpy as np

from common.reporting.stats import clopper_pearson
from common.runfiles.files import read_json

OUTCOMES = ("collapsed", "partial", "healthy")
COLLAPSE_FRACTION = 0.99


def classify_outcome(pred_counts):
    """From the number of validation images predicted as each class:
    collapsed = one class gets >= 99% of the images; partial = otherwise, at least one class is never
    predicted; healthy = every class is predicted at least once."""
    counts = np.asarray(pred_counts)
    if counts.sum() <= 0:
        raise ValueError("no predictions to classify")
    if counts.max() / counts.sum() >= COLLAPSE_FRACTION:
        return "collapsed"
    return "partial" if (counts == 0).any() else "healthy"


def last_epoch_outcome(record):
    """(outcome, how) of a 200-epoch Q1 run at its LAST epoch, by classify_outcome's rule.

    how = "exact": from that epoch's validation prediction counts (history[-1]["val_pred_counts"], recorded
    since 2026-12-02). Older records lack them; then how = "inferred", from the last epoch's test accuracy and
    the test class counts (the row sums of the recorded confusion matrix): healthy when the accuracy exceeds
    1 - the smallest class share (every class must then be predicted at least once), collapsed when the
    number of correct images equals one class's count within one image (what predicting that class for
    (almost) every image gives); otherwise (None, "undecided")."""
    last = record["history"][-1]
    if last.get("val_pred_counts"):
        return classify_outcome(last["val_pred_counts"]), "exact"
    confusion = record.get("test", {}).get("confusion")
    if not confusion or "test_acc" not in last:
        return None, "undecided"
    per_class = np.asarray(confusion).sum(1)                       # true images of each class
    n, correct = per_class.sum(), last["test_acc"] * per_class.sum()
    if correct > n - per_class.min() + 0.5:
        return "healthy", "inferred"
    if np.abs(per_class - correct).min() <= 1.5:
        return "collapsed", "inferred"
    return None, "undecided"


def summarise_variant(records):
    """Counts of each outcome over seeds, the collapse probability with its 95% Clopper-Pearson interval,
    and each seed's class and validation accuracy at the last epoch."""
    records = sorted(records, key=lambda r: r["seed"])
    outcomes = [r["outcome"] for r in records]
    n = len(records)
    out = {"n": n, "seeds": [r["seed"] for r in records],
           "epochs": sorted({r["epochs"] for r in records}),
           "per_seed": {str(r["seed"]): r["outcome"] for r in records},
           "val_acc": {str(r["seed"]): r["val_acc"] for r in records}}
    for o in OUTCOMES:
        out[o] = outcomes.count(o)
    out["p_collapse"] = out["collapsed"] / n if n else None
    out["ci95"] = clopper_pearson(out["collapsed"], n) if n else None
    out["ci95_method"] = "Clopper-Pearson (scipy.stats.binomtest(...).proportion_ci(method='exact'))"
    out["p_not_healthy"] = (n - out["healthy"]) / n if n else None
    out["ci95_not_healthy"] = clopper_pearson(n - out["healthy"], n) if n else None
    return out


def load_study(out):
    """{model: {variant: [records sorted by seed]}} from the study's seed<k>.json files under out/."""
    runs = {}
    for path in Path(out).glob("*/*/seed*.json"):
        rec = read_json(path)
        runs.setdefault(rec["model"], {}).setdefault(rec["variant"], []).append(rec)
    for variants in runs.values():
        for recs in variants.values():
            recs.sort(key=lambda r: r["seed"])
    return runs
