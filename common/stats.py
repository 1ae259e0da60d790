"""Statistics for the README's comparisons: binomial intervals and differences of means with 95% CIs."""
import warnings

import numpy as np
from scipy import stats


def clopper_pearson(k, n, level=0.95):
    """Exact (Clopper-Pearson) interval for a binomial proportion k/n, via scipy.stats.binomtest."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="exact")
    return [float(ci.low), float(ci.high)]


def _with_interval(out, res, level):
    """out plus the 95% interval of a scipy t-test result, its p-value and whether the interval excludes 0."""
    ci = res.confidence_interval(confidence_level=level)
    low, high = float(ci.low), float(ci.high)
    return {**out, "ci95": [low, high], "p": float(res.pvalue), "significant": not (low <= 0 <= high)}


def welch_diff(a, b, level=0.95):
    """Mean of a minus mean of b with a Welch t interval (unequal variances), as a dict for RESULTS.md.

    Uses scipy.stats.ttest_ind(equal_var=False).confidence_interval. With n = 1 on either side there is no
    variance estimate: the interval is None and the dict says so."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    out = {"n_a": len(a), "n_b": len(b), "mean_a": float(a.mean()), "mean_b": float(b.mean()),
           "diff": float(a.mean() - b.mean()), "method": "Welch t (scipy.stats.ttest_ind, equal_var=False)"}
    if len(a) < 2 or len(b) < 2:
        return {**out, "ci95": None, "p": None, "significant": None}
    if a.std() == 0 and b.std() == 0:   # identical values on both sides: the t statistic is undefined
        return {**out, "ci95": [out["diff"], out["diff"]], "p": None, "significant": out["diff"] != 0}
    with warnings.catch_warnings():   # one side with identical values (variance 0) is valid for Welch; scipy warns
        warnings.simplefilter("ignore", RuntimeWarning)
        return _with_interval(out, stats.ttest_ind(a, b, equal_var=False), level)


def paired_diff(a, b, level=0.95):
    """Mean of a - b over pairs (same seed / same protein) with a paired t interval (scipy.stats.ttest_rel)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) != len(b):
        raise ValueError(f"paired samples need equal lengths, got {len(a)} and {len(b)}")
    d = a - b
    out = {"n": len(d), "diff": float(d.mean()), "method": "paired t (scipy.stats.ttest_rel)"}
    if len(d) < 2:
        return {**out, "ci95": None, "p": None, "significant": None}
    if d.std() == 0:
        return {**out, "ci95": [out["diff"], out["diff"]], "p": None, "significant": out["diff"] != 0}
    return _with_interval(out, stats.ttest_rel(a, b), level)
