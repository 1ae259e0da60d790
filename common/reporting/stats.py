"""Statistics for the README's comparisons: binomial intervals and differences of means with 95% CIs."""
import warnings

import numpy as np
from scipy import stats


def _check_counts(k, n):
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")


def clopper_pearson(k, n, level=0.95):
    """Exact (Clopper-Pearson) interval for a binomial proportion k/n, via scipy.stats.binomtest."""
    _check_counts(k, n)
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
    if a.std() == 0 and b.std() == 0:   # no spread on either side: no t statistic, and no verdict from it
        return {**out, "ci95": None, "p": None, "significant": None, "note": "no spread on either side"}
    # one side with identical values (variance 0) is valid for Welch; scipy warns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _with_interval(out, stats.ttest_ind(a, b, equal_var=False), level)


def paired_diff(a, b, level=0.95):
    """Mean of a - b over pairs (same seed / same protein) with a paired t interval
    (scipy.stats.ttest_rel)."""
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


def proportion_diff(k_a, n_a, k_b, n_b, level=0.95):
    """k_a/n_a minus k_b/n_b with Newcombe's hybrid score interval (his method 10: the two Wilson intervals
    from scipy.stats.binomtest(...).proportion_ci(method='wilson') combined), and Fisher's exact p-value. It
    stays inside [-1, 1] and is sensible at 0/n and n/n, where a Wald interval collapses to a point."""
    _check_counts(k_a, n_a)
    _check_counts(k_b, n_b)
    pa, pb = k_a / n_a, k_b / n_b
    la, ua = stats.binomtest(int(k_a), int(n_a)).proportion_ci(confidence_level=level, method="wilson")
    lb, ub = stats.binomtest(int(k_b), int(n_b)).proportion_ci(confidence_level=level, method="wilson")
    d = pa - pb
    low = d - float(np.hypot(pa - la, ub - pb))
    high = d + float(np.hypot(ua - pa, pb - lb))
    p = float(stats.fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]]).pvalue)
    return {"n_a": int(n_a), "n_b": int(n_b), "mean_a": pa, "mean_b": pb, "diff": d, "ci95": [low, high],
            "p": p, "significant": not (low <= 0 <= high),
            "method": "Newcombe hybrid score (Wilson, scipy.stats.binomtest); p: scipy.stats.fisher_exact"}
