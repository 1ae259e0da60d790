"""Softmax failure study and statistics: outcome rule, intervals against hand values, MedMNIST metrics, a
smoke run.

Run: python -m pytest -q tests/test_study.py
"""
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from sklearn.metrics import confusion_matrix, roc_auc_score

from common.blood.data import classification_report
from common.reporting.stats import clopper_pearson, paired_diff, proportion_diff, welch_diff
from common.reporting.study import classify_outcome, summarise_variant


@pytest.mark.parametrize("counts, outcome", [
    ([0, 0, 0, 0, 0, 0, 1712, 0], "collapsed"),
    ([1, 0, 0, 0, 0, 0, 99, 0], "collapsed"),             # 99% exactly is collapsed
    ([2, 0, 0, 0, 0, 0, 98, 0], "partial"),               # 98%: not collapsed, but classes never predicted
    ([1, 1, 1, 1, 1, 1, 1, 0], "partial"),
    ([1, 1, 1, 1, 1, 1, 1, 1], "healthy"),
])
def test_outcome_rule(counts, outcome):
    assert classify_outcome(counts) == outcome


def test_clopper_pearson_hand_values():
    # k = 0: upper bound 1 - 0.025^(1/n); k = n: lower bound 0.025^(1/n) (closed forms of the exact interval)
    assert clopper_pearson(0, 20) == pytest.approx([0.0, 1 - 0.025 ** (1 / 20)], abs=1e-9)
    assert clopper_pearson(20, 20) == pytest.approx([0.025 ** (1 / 20), 1.0], abs=1e-9)
    lo, hi = clopper_pearson(10, 20)      # symmetric about 0.5; published value 0.2720-0.7280
    assert lo == pytest.approx(0.2720, abs=1e-4) and hi == pytest.approx(1 - lo, abs=1e-12)
    with pytest.raises(ValueError):
        clopper_pearson(3, 2)


def test_welch_interval_by_hand():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])
    r = welch_diff(a, b)
    se = np.sqrt(a.var(ddof=1) / 3 + b.var(ddof=1) / 3)                          # sqrt(1/3 + 4/3)
    dof = se**4 / ((a.var(ddof=1) / 3) ** 2 / 2 + (b.var(ddof=1) / 3) ** 2 / 2)  # Welch-Satterthwaite
    from scipy.stats import t
    half = t.ppf(0.975, dof) * se
    assert r["diff"] == -2.0 and r["ci95"] == pytest.approx([-2 - half, -2 + half], rel=1e-9)
    assert r["significant"] is False
    assert welch_diff([1.0], [2.0, 3.0])["ci95"] is None   # n = 1: no interval, said so
    p = paired_diff([1.0, 2.0, 3.0], [0.5, 1.4, 2.6])      # d = .5, .6, .4
    assert p["diff"] == pytest.approx(0.5) and p["significant"] is True


def test_summary_counts_and_interval():
    recs = [{"seed": s, "outcome": o, "val_acc": 0.5, "epochs": 2}
            for s, o in enumerate(["collapsed", "healthy", "partial", "healthy", "collapsed"])]
    s = summarise_variant(recs)
    assert (s["n"], s["collapsed"], s["partial"], s["healthy"]) == (5, 2, 1, 2)
    assert s["ci95"] == clopper_pearson(2, 5) and s["per_seed"]["0"] == "collapsed"


def test_medmnist_metrics_equal_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 8, 300)
    p = rng.dirichlet(np.ones(8), 300)
    p[np.arange(300), y] += 0.3
    p /= p.sum(1, keepdims=True)
    r = classification_report(p, y)
    assert r["auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"), abs=1e-12)
    assert r["acc_medmnist"] == pytest.approx((p.argmax(1) == y).mean())
    assert r["confusion"] == confusion_matrix(y, p.argmax(1), labels=range(8)).tolist()


def test_study_smoke_run(tmp_path, blood_npz):
    out = tmp_path / "f"
    run = subprocess.run([sys.executable, "q1_softmax_study.py", "--npz", str(blood_npz), "--quick",
                          "--seeds", "0", "1", "--out-dir", str(out), "--device", "cpu"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    s = json.loads((out / "q1_softmax_study_quick" / "summary.json").read_text())
    for m in ("q1_1", "q1_2"):
        assert s[m]["n"] == 2 and s[m]["seeds"] == [0, 1]
        assert s[m]["collapsed"] + s[m]["partial"] + s[m]["healthy"] == 2
        assert len(s[m]["ci95"]) == 2 and s[m]["logits_control"]["n"] == 2
    rec = json.loads((out / "q1_softmax_study_quick" / "q1_1" / "softmax" / "seed0.json").read_text())
    assert (len(rec["first_layer_grad_norm"]) == len(rec["step_loss"])
            == rec["steps_per_epoch"] * rec["epochs"])
    for fig in ("outcomes.png", "mechanism.png", "gradients.png"):
        assert (out / "q1_softmax_study_quick" / fig).stat().st_size > 10_000
    # a rerun skips finished runs (no training): the files are untouched
    before = (out / "q1_softmax_study_quick" / "q1_1" / "softmax" / "seed0.json").stat().st_mtime_ns
    again = subprocess.run([sys.executable, "q1_softmax_study.py", "--npz", str(blood_npz), "--quick",
                            "--seeds", "0", "1", "--out-dir", str(out), "--device", "cpu"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "seed   0" not in again.stdout
    assert (out / "q1_softmax_study_quick" / "q1_1" / "softmax" / "seed0.json").stat().st_mtime_ns == before


def test_comparisons_from_metrics_files(tmp_path):
    from common.reporting.compare import comparisons, verdict
    for variant, accs in (("logits", [0.96, 0.965, 0.962]), ("softmax", [0.95, 0.955, 0.948])):
        for seed, acc in enumerate(accs):
            p = tmp_path / "q1_2" / variant / f"seed{seed}" / "metrics.json"
            p.parent.mkdir(parents=True)
            p.write_text(json.dumps({"status": "complete", "seed": seed, "test": {"acc": acc}}))
    (c,) = comparisons(tmp_path)
    assert c["comparison"] == "Q1.2: logits vs softmax" and (c["n_a"], c["n_b"]) == (3, 3)
    assert c["diff"] == pytest.approx(np.mean([0.96, 0.965, 0.962]) - np.mean([0.95, 0.955, 0.948]))
    assert (c["ci95"] == welch_diff([0.96, 0.965, 0.962], [0.95, 0.955, 0.948])["ci95"]
            and verdict(c) == "significant")


def write_runs(root, rel, values, epochs, first_seed=1):
    for seed, (v, e) in enumerate(zip(values, epochs), first_seed):
        p = root / rel / f"seed{seed}" / "metrics.json"
        p.parent.mkdir(parents=True)
        p.write_text(json.dumps({"status": "complete", "seed": seed, "config": {"epochs": e},
                                 "test": {"spearman": v}}))


def write_q2_2(root, exp, arm, curves, epochs=None, first_seed=1):
    """Q2.2 records of one arm: one validation-Spearman curve per seed (test Spearman = the curve's last
    value)."""
    for seed, c in enumerate(curves, first_seed):
        p = root / exp / arm / f"seed{seed}" / "metrics.json"
        p.parent.mkdir(parents=True)
        p.write_text(json.dumps({"status": "complete", "seed": seed, "config": {"epochs": epochs or len(c)},
                                 "test": {"spearman": c[-1]},
                                 "history": [{"epoch": e + 1, "val_spearman": x} for e, x in enumerate(c)]}))


def test_comparisons_refuse_runs_of_different_lengths(tmp_path):
    """A protocol rerun halfway (mean pooling at 50 epochs, attention still at 10) gets no interval."""
    from common.reporting.compare import comparisons, verdict
    write_q2_2(tmp_path, "q2_2_default", "lstm",
               [[0.5] * 9 + [0.776], [0.5] * 9 + [0.777], [0.5] * 9 + [0.775]], 50)
    write_q2_2(tmp_path, "q2_2_default", "lstm_attention",
               [[0.5] * 9 + [0.774], [0.5] * 9 + [0.773], [0.5] * 9 + [0.775]])
    rows = comparisons(tmp_path)
    assert rows and all(c["ci95"] is None and verdict(c).startswith("not comparable: runs of different "
                                                                    "lengths (epochs [10, 50])")
                        for c in rows)
    # Q2.1: each model has its own budget
    write_runs(tmp_path, "q2_1/cnn", [0.767, 0.768, 0.768], [25, 25, 25])
    write_runs(tmp_path, "q2_1/lstm", [0.776, 0.777, 0.777], [50, 50, 12])    # ... but one side mixes two
    q21 = next(c for c in comparisons(tmp_path) if c["comparison"].startswith("Q2.1"))
    assert "epochs: a [12, 50], b [25]" in verdict(q21) and q21["ci95"] is None
    (tmp_path / "q2_1/lstm/seed3/metrics.json").unlink()
    q21 = next(c for c in comparisons(tmp_path) if c["comparison"].startswith("Q2.1"))
    assert verdict(q21) == "significant" and q21["n_a"] == 2


def test_tuned_vs_default_comparisons_need_one_budget(tmp_path):
    """Tuned vs the homework default is one protocol (same epochs); BiLSTM vs CNN compares two budgets by
    design."""
    from common.reporting.compare import comparisons, verdict
    write_runs(tmp_path, "q2_1/cnn", [0.612, 0.607, 0.609], [25, 25, 25])
    write_runs(tmp_path, "q2_1/cnn_default", [0.577, 0.570, 0.574], [25, 25, 25])
    write_runs(tmp_path, "q2_1/lstm_default", [0.613, 0.610, 0.615], [50, 50, 50])
    by = {c["comparison"]: c for c in comparisons(tmp_path)}
    assert set(by) == {"Q2.1: tuned CNN vs homework default", "Q2.1: BiLSTM vs CNN, homework defaults",
                       "Q2.1: homework-default BiLSTM vs tuned CNN"}
    tuned = by["Q2.1: tuned CNN vs homework default"]
    assert tuned["diff"] == pytest.approx(0.609333 - 0.573667, abs=1e-6) and verdict(tuned) == "significant"
    assert by["Q2.1: BiLSTM vs CNN, homework defaults"]["ci95"] is not None
    write_runs(tmp_path, "q2_1/lstm", [0.62, 0.62], [50, 40])
    row = next(c for c in comparisons(tmp_path)
               if c["comparison"] == "Q2.1: tuned BiLSTM vs homework default")
    assert "not comparable" in verdict(row)


def test_q2_1_comparisons_leave_out_the_searchs_own_run(tmp_path):
    """Seed 0 of a selected configuration is the search's winning run (best of its trials on this validation
    set): it stays out of every comparison that involves a selected configuration, on both sides."""
    from common.reporting.compare import comparisons
    write_runs(tmp_path, "q2_1/cnn", [0.700, 0.607, 0.609, 0.608], [25] * 4, first_seed=0)   # seed 0: lucky
    write_runs(tmp_path, "q2_1/cnn_default", [0.577, 0.570, 0.574, 0.572], [25] * 4, first_seed=0)
    write_runs(tmp_path, "q2_1/lstm_default", [0.613, 0.610, 0.615, 0.612], [50] * 4, first_seed=0)
    by = {c["comparison"]: c for c in comparisons(tmp_path)}
    tuned = by["Q2.1: tuned CNN vs homework default"]
    assert tuned["seeds_a"] == tuned["seeds_b"] == [1, 2, 3] and "seed 0" in tuned["metric"]
    assert tuned["diff"] == pytest.approx(0.608 - 0.572, abs=1e-9)
    # no selected side: all seeds
    assert by["Q2.1: BiLSTM vs CNN, homework defaults"]["seeds_a"] == [0, 1, 2, 3]


def test_q2_2_convergence_measures_and_their_comparisons(tmp_path):
    """Q2.2's three convergence measures, attention - mean (Welch) on the common seeds: a threshold some seed
    never reached gets no interval and names that seed; one every run reaches at the same epoch is a floor, no
    verdict."""
    from common.reporting.compare import comparisons, verdict
    mean = [[0.40, 0.52, 0.56, 0.59], [0.45, 0.50, 0.57, 0.58], [0.30, 0.51, 0.55, 0.57]]
    att = [[0.51, 0.56, 0.58, 0.60], [0.52, 0.57, 0.59, 0.61], [0.50, 0.55, 0.60, 0.60]]
    write_q2_2(tmp_path, "q2_2_default", "lstm", [c + [0.3] * 6 for c in mean])
    write_q2_2(tmp_path, "q2_2_default", "lstm_attention", [c + [0.3] * 6 for c in att])
    (tmp_path / "q2_2_default/lstm_attention/seed2/metrics.json").rename(tmp_path / "seed2.json")
    rows = [c for c in comparisons(tmp_path) if c["comparison"].startswith("Q2.2 (homework-default")]
    assert rows and all(c["seeds_a"] == c["seeds_b"] == [1, 3] for c in rows)   # only the seeds both arms ran
    (tmp_path / "seed2.json").rename(tmp_path / "q2_2_default/lstm_attention/seed2/metrics.json")
    by = {c["metric"]: c for c in comparisons(tmp_path)}
    first = by["epochs to validation Spearman ≥ 0.5"]
    assert first["values_a"] == [1, 1, 1] and first["values_b"] == [2, 2, 2] and first["diff"] == -1
    never = by["epochs to validation Spearman ≥ 0.6"]
    assert never["ci95"] is None and verdict(never).startswith(
        "not comparable: not reached within 10 epochs by lstm seed 1, lstm seed 2, lstm seed 3 (reached: "
        "lstm_attention 3/3, lstm 0/3; rank test p = ")
    assert never["reached_a"] == "3/3" and never["reached_b"] == "0/3" and never["rank_test"]["p"] < 0.2
    early = by["mean validation Spearman, epochs 1-10"]
    assert (early["values_a"][0] == pytest.approx((0.51 + 0.56 + 0.58 + 0.60 + 1.8) / 10)
            and early["ci95"] is not None)
    # mean: 0.95 x best 0.5605 / 0.551 / 0.5415
    own = by["epochs to 95% of the run's own best validation Spearman"]
    assert own["values_b"] == [4, 3, 3] and own["values_a"] == [3, 3, 3]
    assert own["diff"] == pytest.approx(-1 / 3) and own["ci95"] is not None
    # tuned: seed 0 is the search's run
    write_q2_2(tmp_path, "q2_2", "lstm", [[0.5, 0.6]] * 3, first_seed=0)
    write_q2_2(tmp_path, "q2_2", "lstm_attention", [[0.5, 0.6], [0.5, 0.61], [0.5, 0.62]], first_seed=0)
    tuned = [c for c in comparisons(tmp_path) if c["comparison"].startswith("Q2.2 (Q2.1-tuned")]
    assert tuned and all(c["seeds_a"] == [1, 2] for c in tuned)
    floor = next(c for c in tuned if c["metric"] == "epochs to validation Spearman ≥ 0.5")
    assert verdict(floor) == ("not comparable: every run of both arms reaches it at epoch 1 "
                              "(a floor, no spread)")


@pytest.mark.parametrize("counts, published", [
    ((56, 70, 48, 80), [0.0524, 0.3339]),    # Newcombe (1998), Stat Med 17:873, Table II, method 10
    ((9, 10, 3, 10), [0.1705, 0.8090]),
    ((10, 10, 0, 10), [0.6075, 1.0000]),
])
def test_proportion_diff_published_values(counts, published):
    r = proportion_diff(*counts)
    assert r["diff"] == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])
    assert r["ci95"] == pytest.approx(published, abs=5e-5) and r["significant"]


def test_proportion_diff_fisher_p_and_bad_counts():
    # two tables as extreme of C(20, 10)
    assert proportion_diff(10, 10, 0, 10)["p"] == pytest.approx(2 / 184756)
    same = proportion_diff(0, 20, 0, 20)
    assert (same["diff"] == 0 and same["ci95"][0] < 0 < same["ci95"][1] and not same["significant"]
            and same["p"] == 1)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        proportion_diff(21, 20, 0, 20)


def test_study_comparisons_from_the_summary(tmp_path):
    from common.reporting.compare import comparisons
    side = {"n": 20, "seeds": list(range(20)), "epochs": [2], "healthy": 0, "collapsed": 5}
    summary = {"q1_1": {**side, "logits_control": {**side, "healthy": 20, "collapsed": 0}}}
    (tmp_path / "q1_softmax_study").mkdir()
    (tmp_path / "q1_softmax_study" / "summary.json").write_text(json.dumps(summary))
    not_healthy, collapsed = comparisons(tmp_path)
    assert (not_healthy["comparison"] == "Q1.1: softmax vs logits"
            and (not_healthy["n_a"], not_healthy["n_b"]) == (20, 20))
    assert not_healthy["diff"] == 1.0 and not_healthy["ci95"] == proportion_diff(20, 20, 0, 20)["ci95"]
    assert collapsed["diff"] == 0.25 and "2 epochs" in collapsed["metric"] and collapsed["significant"]


def test_q2_2_arms_with_no_spread_or_mixed_precision_get_no_verdict(tmp_path):
    """All 2 against all 3 is a floor, not a significant difference; bf16 against fp32 runs are not
    compared."""
    from common.reporting.compare import comparisons, verdict
    write_q2_2(tmp_path, "q2_2_default", "lstm", [[0.4, 0.55, 0.6]] * 3)
    write_q2_2(tmp_path, "q2_2_default", "lstm_attention", [[0.55, 0.58, 0.6]] * 3)
    by = {c["metric"]: c for c in comparisons(tmp_path)}
    first = by["epochs to validation Spearman ≥ 0.55"]
    assert first["diff"] == -1 and first["ci95"] is None and first["significant"] is None
    assert verdict(first).startswith("not comparable: no spread on either side")
    p = tmp_path / "q2_2_default/lstm/seed1/metrics.json"
    rec = json.loads(p.read_text())
    rec["config"]["precision"] = "bf16"
    p.write_text(json.dumps(rec))
    assert all("different precisions" in verdict(c) for c in comparisons(tmp_path))


def test_no_t_test_verdict_on_collapsed_or_partial_q1_runs(tmp_path):
    """Softmax outcomes are bimodal across seeds (collapsed near 0.19, or not): a Welch row says 'not
    applicable' and points to the outcome counts; all-healthy sides keep their interval."""
    from common.reporting.compare import comparisons, verdict
    healthy, collapsed = np.eye(8, dtype=int) * 50, np.zeros((8, 8), dtype=int)
    collapsed[:, 0] = 50
    for rel, accs, mats in (("q1_1/logits", [0.95, 0.956, 0.96], [healthy] * 3),
                            ("q1_1/softmax", [0.19, 0.19, 0.85], [collapsed, collapsed, healthy])):
        for seed, (acc, m) in enumerate(zip(accs, mats)):
            p = tmp_path / rel / f"seed{seed}" / "metrics.json"
            p.parent.mkdir(parents=True)
            p.write_text(json.dumps({"status": "complete", "seed": seed, "config": {"epochs": 200},
                                     "test": {"acc": acc, "confusion": m.tolist()}}))
    (c,) = comparisons(tmp_path)
    assert c["ci95"] is None and c["significant"] is None
    assert verdict(c) == ("not applicable: outcomes not all healthy (q1_1/logits: 3 healthy; q1_1/softmax: "
                          "2 collapsed, 1 healthy); compare the outcome counts (softmax study rows, "
                          "difference of proportions)")
    for seed in (0, 1):   # now every softmax run trained normally: the t interval is back
        p = tmp_path / "q1_1/softmax" / f"seed{seed}" / "metrics.json"
        p.write_text(p.read_text().replace(json.dumps(collapsed.tolist()), json.dumps(healthy.tolist())))
    (c,) = comparisons(tmp_path)
    assert c["ci95"] is not None


def test_last_epoch_outcome_exact_from_counts_else_inferred_from_accuracy():
    from common.reporting.study import last_epoch_outcome
    confusion = np.diag([100, 300, 50, 50]).tolist()            # 500 test images, smallest class 50 (10 %)
    rec = lambda acc, **h: {"history": [{"epoch": 200, "test_acc": acc, **h}],
                            "test": {"confusion": confusion}}
    assert last_epoch_outcome(rec(0.5, val_pred_counts=[0, 99, 1, 0])) == ("collapsed", "exact")
    # counts win
    assert last_epoch_outcome(rec(0.95, val_pred_counts=[10, 10, 0, 10])) == ("partial", "exact")
    # 455 > 450 correct: every class predicted
    assert last_epoch_outcome(rec(0.91)) == ("healthy", "inferred")
    assert last_epoch_outcome(rec(0.90)) == (None, "undecided")           # 450: one class could be missing
    assert last_epoch_outcome(rec(300 / 500)) == ("collapsed", "inferred")   # exactly class 1's count
    assert last_epoch_outcome(rec(301 / 500)) == ("collapsed", "inferred")   # within one image
    assert last_epoch_outcome(rec(0.4)) == (None, "undecided")
    assert last_epoch_outcome({"history": [{"epoch": 2}], "test": {}}) == (None, "undecided")


def test_q2_2_test_spearman_is_also_compared_paired_by_seed(tmp_path):
    """The same seed gives both arms the same batch order: the per-seed differences get a paired t
    interval."""
    from common.reporting.compare import comparisons
    write_q2_2(tmp_path, "q2_2_default", "lstm", [[0.5] * 9 + [v] for v in (0.610, 0.615, 0.612)])
    write_q2_2(tmp_path, "q2_2_default", "lstm_attention",
               [[0.5] * 9 + [v] for v in (0.6120, 0.6171, 0.6139)])
    row = next(c for c in comparisons(tmp_path) if c["metric"].startswith("test Spearman, paired"))
    assert row["n"] == 3 and row["diff"] == pytest.approx(np.mean([0.002, 0.0021, 0.0019]))
    # +0.0019..0.0021 every seed: significant
    assert row["ci95"][0] > 0 and row["method"].startswith("paired t")
