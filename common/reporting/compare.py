"""The README's comparisons with n, the mean difference and its 95% CI, computed from the committed metrics
files."""
from pathlib import Path

import numpy as np

from common.reporting.q2_2_design import q2_2_comparisons
from common.reporting.stats import paired_diff, proportion_diff, welch_diff
from common.reporting.study import classify_outcome
from common.runfiles.files import read_json
from common.runfiles.records import load_runs


def _values(root, rel, key):
    """(seed, value of a dotted key, epochs of its protocol) over a variant folder's finished runs."""
    recs = [r for r in load_runs(Path(root) / rel) if r.get("status") == "complete"]
    out = []
    for r in recs:
        v = r
        for part in key.split("."):
            v = v[part]
        out.append((r["seed"], float(v), r.get("config", {}).get("epochs")))
    return out


def outcomes(root, rel):
    """{outcome: count} of a Q1 variant's finished runs by the softmax study's rule (collapsed / partial /
    healthy, from the test confusion matrix at the selected epoch); empty where the records have no confusion
    matrix."""
    out = {}
    for r in load_runs(Path(root) / rel):
        confusion = r.get("status") == "complete" and r.get("test", {}).get("confusion")
        if confusion:
            o = classify_outcome(np.asarray(confusion).sum(0))
            out[o] = out.get(o, 0) + 1
    return out


def protocol_mismatch(va, vb, same_epochs):
    """Why two sides cannot be compared, or None: runs of one side with different epoch budgets (a protocol
    half rerun), or, where the comparison needs one protocol, two sides with different budgets."""
    ea, eb = ({e for *_, e in v} - {None} for v in (va, vb))
    if len(ea) > 1 or len(eb) > 1 or (same_epochs and ea and eb and ea != eb):
        return (f"runs of different lengths (epochs: a {sorted(ea)}, b {sorted(eb)}); "
                f"rerun them to one protocol")
    return None


def comparisons(root):
    """A list of comparison dicts (label, metric, a, b, and the statistics). A comparison is listed only when
    both sides have files; one side with n = 1 gets no interval, and says so."""
    root = Path(root)
    acc, sp = "test accuracy at the best validation epoch", "test Spearman"
    # (label, metric, a, b, key, both sides must share one epoch budget:
    # not Q2.1, whose models have their own)
    specs = [("Q1.1: logits vs softmax", acc, "q1_1/logits", "q1_1/softmax", "test.acc", True),
             ("Q1.2: logits vs softmax", acc, "q1_2/logits", "q1_2/softmax", "test.acc", True),
             ("Q1.2 vs Q1.1 (logits)", acc, "q1_2/logits", "q1_1/logits", "test.acc", True),
             ("Q1.2 vs Q1.1 (softmax)", acc, "q1_2/softmax", "q1_1/softmax", "test.acc", True),
             ("Q2.1: BiLSTM vs CNN", f"{sp} (selected configuration)", "q2_1/lstm", "q2_1/cnn",
              "test.spearman", False),
             ("Q2.1: BiLSTM vs CNN, homework defaults", sp, "q2_1/lstm_default", "q2_1/cnn_default",
              "test.spearman", False),
             ("Q2.1: homework-default BiLSTM vs tuned CNN", sp, "q2_1/lstm_default", "q2_1/cnn",
              "test.spearman", False),
             ("Q2.1: tuned CNN vs homework default", sp, "q2_1/cnn", "q2_1/cnn_default",
              "test.spearman", True),
             ("Q2.1: tuned BiLSTM vs homework default", sp, "q2_1/lstm", "q2_1/lstm_default",
              "test.spearman", True)]
    out = []
    # configurations a search selected: their seed 0 is the search's own run
    selected = {"q2_1/cnn", "q2_1/lstm"}
    for label, metric, a, b, key, same_epochs in specs:
        va, vb = _values(root, a, key), _values(root, b, key)
        if {a, b} & selected:   # the run chosen for its luck stays out of the comparison, on both sides
            va, vb = [v for v in va if v[0] != 0], [v for v in vb if v[0] != 0]
            metric += "; seeds ≥ 1 (seed 0 of a selected configuration is the search's own run, left out)"
        if not va or not vb:
            continue
        stats = welch_diff([v for _, v, _ in va], [v for _, v, _ in vb])
        mismatch = protocol_mismatch(va, vb, same_epochs)
        kinds = {side: outcomes(root, side) for side in (a, b)} if a.startswith("q1") else {}
        if mismatch:   # no interval across protocols: the difference would mix the effect with the budget
            stats.update(ci95=None, p=None, significant=None, not_comparable=mismatch)
        elif any(set(k) - {"healthy"} for k in kinds.values()):
            # collapsed or partial runs: the outcome is bimodal across seeds, and a t interval on a few such
            # accuracies means nothing; the outcome counts (the softmax study's rows) are the comparison
            counts = "; ".join(f"{side}: " + ", ".join(f"{n} {o}" for o, n in sorted(k.items()))
                               for side, k in kinds.items())
            stats.update(ci95=None, p=None, significant=None, method="— (t test not applicable)",
                         not_applicable=f"outcomes not all healthy ({counts}); compare the outcome counts "
                                        f"(softmax study rows, difference of proportions)")
        out.append({"comparison": label, "metric": metric, "a": a, "b": b, "seeds_a": [s for s, *_ in va],
                    "seeds_b": [s for s, *_ in vb], **stats})
    out += q2_2_comparisons(root)
    out += study_comparisons(root)
    # the protocol (at most 30 epochs), then any cap-sensitivity check (q2_3_cap<N>, bench/q2_3_cap_queue.sh)
    q23 = root / "q2_3" / "summary.json"
    summaries = {p: read_json(p) for p in [q23, *sorted(Path(root).glob("q2_3_cap*/summary.json"))]
                 if p.is_file()}
    for path, s in summaries.items():
        if "comparisons" not in s:
            continue
        exp = path.parent.name   # paired over proteins, written by q2_3_multi_protein.py
        cap = "" if exp == "q2_3" else f" (at most {s['epochs']} epochs)"
        for name, c in s["comparisons"].items():
            out.append({"comparison": f"Q2.3{cap}: {name}", "metric": f"test Spearman (SetB), paired over "
                        f"{c['n']} proteins, each the mean of seeds {s['seeds']}", "a": f"{exp} {c['a']}",
                        "b": f"{exp} {c['b']}",
                        **{k: v for k, v in c.items() if k not in ("a", "b", "proteins", "unit")}})
    # the first design (8 epochs, held-out arm): figures/archive/q2_3_8epochs, figures/easy_preset/q2_3
    if q23 in summaries and "comparisons" not in summaries[q23]:
        s = summaries[q23]
        rows = s["rows"]
        for name, col in (("multi-protein (seen) vs single-protein models", "multi_seen"),
                          ("multi-protein (held out) vs single-protein models", "multi_unseen")):
            if all(r.get(col) is not None for r in rows):
                stats = paired_diff([r[col] for r in rows], [r["single"] for r in rows])
                out.append({"comparison": f"Q2.3: {name}",
                            "metric": f"test Spearman, paired over {len(rows)} proteins "
                            f"(seeds {s['seeds']})", "a": f"q2_3 {col}", "b": "q2_3 single", **stats})
    return out


def study_comparisons(root):
    """Softmax vs logits on the softmax study's seeds (n = 20 a side): the share of seeds that did not train
    normally, and the share that collapsed, each as a difference of proportions with its 95% CI."""
    path = Path(root) / "q1_softmax_study" / "summary.json"
    if not path.is_file():
        return []
    s = read_json(path)
    out = []
    for model in ("q1_1", "q1_2"):
        if model not in s:
            continue
        sm, lg = s[model], s[model]["logits_control"]
        where = (f"softmax study, seeds {min(sm['seeds'])}-{max(sm['seeds'])}, "
                 f"{'/'.join(map(str, sm['epochs']))} epochs")
        for what, k_a, k_b in (("not healthy (collapsed, or a class never predicted on val)",
                                sm["n"] - sm["healthy"], lg["n"] - lg["healthy"]),
                               ("collapsed (one class for >= 99% of val images)", sm["collapsed"],
                                lg["collapsed"])):
            out.append({"comparison": f"{model[:2].upper()}.{model[3:]}: softmax vs logits",
                        "metric": f"share of seeds {what}; {where}", "a": f"q1_softmax_study {model} softmax",
                        "b": f"q1_softmax_study {model} logits", "seeds_a": sm["seeds"],
                        "seeds_b": lg["seeds"], **proportion_diff(k_a, sm["n"], k_b, lg["n"])})
    return out


def verdict(c):
    if c.get("not_applicable"):
        return f"not applicable: {c['not_applicable']}"
    if c.get("not_comparable"):
        return f"not comparable: {c['not_comparable']}"
    if c.get("ci95") is None:
        return "no interval (n = 1 on a side)"
    return "significant" if c["significant"] else "no significant difference"


def comparison_rows(comps):
    rows = ["| comparison | metric | n (a, b) | mean a | mean b | "
            "difference a − b | 95% CI | method | verdict |",
            "|---|---|---|---|---|---|---|---|---|"]
    for c in comps:
        n = f"{c['n']} pairs" if "n" in c else f"{c['n_a']}, {c['n_b']}"
        ci = "—" if c.get("ci95") is None else f"[{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}]"
        means = ("—", "—") if "mean_a" not in c else (f"{c['mean_a']:.4f}", f"{c['mean_b']:.4f}")
        diff = "—" if c.get("diff") is None else f"{c['diff']:+.4f}"
        rows.append(f"| {c['comparison']} | {c['metric']} | {n} | {means[0]} | {means[1]} | {diff} | {ci} | "
                    f"{c['method']} | {verdict(c)} |")
    return rows
