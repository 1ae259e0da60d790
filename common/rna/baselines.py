"""Q2.3's baselines without learned weights: a protein's profile match, and the other proteins' mean
target."""
from common.rna.multi import K, kmer_descriptors, profile_scores
from common.training.metrics import regression_report


def others_mean(split):
    """The second baseline, also without weights: a probe scored for protein j by the mean of the OTHER proteins'
    measured targets for that probe (those present). It is what a probe's shared background alone predicts, the part
    a multi-protein model can learn from the other proteins without any profile."""  # noqa: E501
    y, m = split["y"], split["y_mask"].float()
    total, count = (y * m).sum(1, keepdim=True), m.sum(1, keepdim=True)
    return ((total - y * m) / (count - m).clamp(min=1)).masked_fill(count - m == 0, 0.0)   # (N, P)


def profile_only(data, profiles, names, top_fraction):
    """The baseline: validation and SetB Spearman (and Pearson) of each protein's profile match alone, and of
    the other proteins' mean; no weights, no seed. Returns the rows of profile_only.json with the
    definitions."""
    rows = {}
    for split in ("val", "test"):
        scores = profile_scores(data[split]["x"], data[split]["valid"], profiles)
        for name, r in zip(names, regression_report(scores, data[split]["y"], data[split]["y_mask"])):
            rows.setdefault(name, {})[split] = {"spearman": r["spearman"], "pearson": r["pearson"]}
        others = regression_report(others_mean(data[split]), data[split]["y"], data[split]["y_mask"])
        for name, r in zip(names, others):
            rows[name][f"{split}_others_mean"] = {"spearman": r["spearman"], "pearson": r["pearson"]}
    score_rule = profile_scores.__doc__.splitlines()[0].split(": ", 1)[1]
    return {"k": K, "top_fraction": top_fraction,
            "others_mean_definition": others_mean.__doc__.strip(),
            "definition": kmer_descriptors.__doc__.split("\n\n")[1].strip() + " Score of a probe: "
                          + score_rule + " Spearman over probes with a measured intensity (ties: average "
                            "ranks, as scipy.stats.spearmanr).",
            "proteins": rows}
