"""Figures, drawn only from metrics files. Each names the experiment and the data it came from."""
import textwrap
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from common.reporting.study import classify_outcome, last_epoch_outcome  # noqa: E402
from common.runfiles.files import UserError, save_figure, source_name  # noqa: E402
from common.runfiles.records import load_runs  # noqa: E402

COLORS = {"logits": "tab:blue", "softmax": "tab:red", "cnn": "tab:green", "lstm": "tab:purple",
          "lstm_attention": "tab:orange", "maxpool": "tab:cyan"}


def finish(fig, path):
    """Save atomically, free the figure, return the path."""
    save_figure(fig, path)
    plt.close(fig)
    return Path(path)


def data_label(record):
    d = record["data"]
    tag = d.get("checksum") or d.get("md5") or ""   # one key since 2026-12-02; older Q1 records say md5
    return f"{source_name(d)} ({tag[:8]})"


def run_label(records):
    """Data (with checksum), epochs, n and device of the runs a figure draws. Run notes (what shared the
    machine, reruns) are bookkeeping: they go to RESULTS.md, not into titles."""
    r = records[0]
    quick = " QUICK" if r["config"].get("quick") else ""
    ep = sorted({x["epochs_run"] for x in records})
    epochs = f"{ep[0]} epochs" if len(ep) == 1 else f"{ep[0]}–{ep[-1]} epochs run"
    devices = sorted({x["device_name"] for x in records})
    per = {}
    for x in records:
        per[x.get("variant", "")] = per.get(x.get("variant", ""), 0) + 1
    n = f"n = {len(records)}" if len(per) == 1 else (
        f"n = {next(iter(per.values()))} per variant" if len(set(per.values())) == 1
        else "n = " + ", ".join(f"{v} {k}" for k, v in per.items()))
    return f"{data_label(r)}, {epochs}, {n}, {' / '.join(devices)}{quick}"


OUTCOME_STYLE = {"collapsed": ":", "partial": "--", "healthy": "-"}


def outcome(record):
    """collapsed / partial / healthy (the softmax study's rule) from a Q1 run's test confusion matrix, else
    None."""
    confusion = record.get("test", {}).get("confusion")
    if not confusion:
        return None
    return classify_outcome(np.asarray(confusion).sum(0))   # images predicted as each class


INFERRED_NOTE = ("*: the run's last-epoch outcome is inferred from its recorded test accuracy (the record "
                 "predates per-epoch prediction counts): above 1 - the smallest class share = every class "
                 "predicted; equal to one class's count within one image = collapsed")


def outcome_label(record):
    """A run's outcome by the softmax study's rule at its selected epoch and at its last epoch ('*':
    inferred)."""
    best, (last, how) = outcome(record), last_epoch_outcome(record)
    n, b = record["history"][-1]["epoch"], record["best"]["epoch"]
    if last is None:
        return f"{best} at ep {b} (selected)"
    star = "" if how == "exact" else "*"
    if best in (None, last):
        return f"{last} at ep {n}{star}" if best is None else f"{last} at ep {b} (selected) and {n}{star}"
    return f"{best} at ep {b} (selected), {last} at ep {n}{star}"


def curve(ax, records, key, label, color):
    """Plot key per epoch. Where the seeds end in different outcomes (collapsed / partial / healthy), each
    seed is drawn styled by its outcome and no mean is drawn (a mean of a collapsed and a healthy run is a
    curve no run followed). Where they agree: the mean of the seeds, with the band of their range."""
    n = min(len(r["history"]) for r in records)
    ys = np.array([[h[key] for h in r["history"][:n]] for r in records])
    x = np.arange(1, n + 1)
    # seeds that ran longer (early stopping ended the others): each drawn on to its last epoch
    for r in records:
        if len(r["history"]) > n:
            tail = r["history"][n - 1:]
            ax.plot([h["epoch"] for h in tail], [h[key] for h in tail], color=color, lw=0.8, alpha=0.6)
    # at the selected epoch, at the last epoch
    paths = [(outcome(r), last_epoch_outcome(r)[0]) for r in records]
    if len(set(paths)) > 1:
        for r, (best, last), y in zip(records, paths, ys):
            ax.plot(x, y, color=color, ls=OUTCOME_STYLE.get(last or best, "-"), lw=1.2,
                    label=f"{label} seed {r['seed']}: {outcome_label(r)}")
        return
    if len(records) > 1:
        ax.fill_between(x, ys.min(0), ys.max(0), color=color, alpha=0.18, lw=0)
    longer = len({len(r["history"]) for r in records}) > 1
    ax.plot(x, ys.mean(0), color=color,
            label=label + ((f" (mean of {len(records)}; band: range; thin: seeds that ran longer)"
                            if longer else f" (mean of {len(records)} seeds; band: their range)")
                           if len(records) > 1 else ""))


def legend_below(ax, ncol=1):
    """A legend under the axes, so that it never covers data."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=8, ncol=ncol, frameon=False)


def variant_runs(exp_dir, variants):
    """Records per variant; once a variant has finished runs, unfinished ones (still training) are left
    out."""
    runs = {v: load_runs(Path(exp_dir) / v) for v in variants}
    runs = {v: [r for r in recs if r.get("status") == "complete"] or recs for v, recs in runs.items()}
    runs = {v: r for v, r in runs.items() if r}
    if not runs:
        raise UserError(f"no metrics.json under {exp_dir}; run the experiment's script first")
    return runs


def plot_q1_curves(exp_dir, title, variants=("logits", "softmax")):
    """Training loss, validation accuracy and test accuracy per epoch, both variants on the same axes."""
    runs = variant_runs(exp_dir, variants)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.3))
    panels = [("train_loss", "training loss (cross-entropy, log scale)"),
              ("val_acc", "validation accuracy (★ selected epoch)"),
              ("test_acc", "test accuracy (plotted, not used for selection)")]
    for ax, (key, ylabel) in zip(axes, panels):
        for v, recs in runs.items():
            curve(ax, recs, key, v, COLORS[v])
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        legend_below(ax)
    axes[0].set_yscale("log")   # logits reach ~1e-6 while softmax stalls near 1.3: both visible on a log axis
    for v, recs in runs.items():   # mark the epoch selected on validation, for every seed
        for r in recs:
            b = r["best"]
            axes[1].plot(b["epoch"], b["val_acc"], "*", color=COLORS[v], ms=12 if len(recs) == 1 else 8)
            axes[2].plot(b["epoch"], r["test"]["acc"], "*", color=COLORS[v], ms=12 if len(recs) == 1 else 8)
    every = [r for recs in runs.values() for r in recs]
    what = ("logits vs softmax-before-CrossEntropy" if len(runs) > 1 else
            f"{next(iter(runs))} only" + (" (softmax before CrossEntropy)" if "softmax" in runs else ""))
    fig.suptitle(textwrap.fill(f"{title}: {what} — {run_label(every)}", 150))
    if any(h.get_label().endswith("*") for ax in axes for h in ax.get_lines()):
        fig.text(0.5, -0.3, INFERRED_NOTE, ha="center", va="top", fontsize=8)
    return finish(fig, Path(exp_dir) / "curves.png")


def _mean(records, get):
    vals = np.array([get(r) for r in records], dtype=float)
    return vals.mean(), (vals.std(ddof=1) if len(vals) > 1 else 0.0)


def plot_q1_comparison(q11_dir, q12_dir, out_path):
    """Q1.2 (MaxPool) against Q1.1 (no pooling): test accuracy, parameters, total and per-epoch time."""
    if not any((Path(q11_dir) / v).exists() for v in ("logits", "softmax")):
        raise UserError(f"no Q1.1 metrics under {q11_dir}; "
                        f"run `python q1_1_cnn.py` (or --quick for a smoke run) first")
    a, b = variant_runs(q11_dir, ("logits", "softmax")), variant_runs(q12_dir, ("logits", "softmax"))
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.6))
    panels = [("test accuracy at the best-validation epoch", lambda r: r["test"]["acc"], False, "%.3f", None),
              ("parameters (log scale)", lambda r: r["params"], True, "{:,.0f}", "fewer"),
              ("total training time, s (epochs run on each bar)", lambda r: r["train_seconds"], False, "%.0f",
               "less"),
              ("median seconds per epoch (train + evaluation)", lambda r: r["seconds_per_epoch_median"],
               False, "%.2f", "faster")]
    variants = sorted(set(a) | set(b))
    width = 0.38
    for ax, (title, get, log, fmt, ratio) in zip(axes, panels):
        for i, (name, runs, color) in enumerate([("Q1.1 no pool", a, "tab:gray"),
                                                 ("Q1.2 MaxPool", b, "tab:cyan")]):
            xs, ms, ss, labels = [], [], [], []
            for j, v in enumerate(variants):
                if v in runs and title.startswith("test accuracy") and len({outcome(r) for r in runs[v]}) > 1:
                    # seeds with different outcomes: each seed as a point named by its outcome, no mean bar
                    groups = {}
                    for k, r in enumerate(runs[v]):
                        x = j + (i - 0.5) * width + (k - 1) * 0.08
                        ax.plot(x, get(r), "o", color=color, mec="k")
                        groups.setdefault(outcome(r), []).append((x, get(r), r["seed"]))
                    for o, pts in groups.items():   # one label per outcome: "seeds 0, 2: collapsed"
                        seeds = ", ".join(str(s) for *_, s in pts)
                        ax.annotate(f"seed{'s' * (len(pts) > 1)} {seeds}\n{o}",
                                    (np.mean([p[0] for p in pts]), pts[0][1]), xytext=(0, 6),
                                    textcoords="offset points", ha="center", fontsize=7)
                    continue
                if v in runs:
                    m, s = _mean(runs[v], get)
                    xs.append(j + (i - 0.5) * width)
                    ms.append(m)
                    ss.append(s)
                    n = len(runs[v])
                    labels.append((fmt.format(m) if "{" in fmt else fmt % m)
                                  + (f"\n{runs[v][0]['epochs_run']} ep" if "epochs run" in title else "")
                                  + (f"\n(n={n})" if n > 1 else ""))
            bars = ax.bar(xs, ms, width, yerr=ss if any(ss) else None, color=color, label=name, capsize=3)
            ax.bar_label(bars, labels=labels, fontsize=8)
        # the ratio the README quotes, Q1.1 over Q1.2, in the middle of each pair
        for j, v in enumerate(variants):
            if ratio and v in a and v in b:
                q = _mean(a[v], get)[0] / _mean(b[v], get)[0]
                ax.text(j, 0.5, f"{q:.1f}×\n{ratio}", transform=ax.get_xaxis_transform(), ha="center",
                        va="center", fontsize=11, fontweight="bold",
                        bbox={"facecolor": "white", "alpha": 0.85, "lw": 0})
        ax.set_xticks(range(len(variants)), variants)
        ax.set_title(title, fontsize=10)
        if log:
            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.margins(y=0.15)
        ax.grid(alpha=0.3, axis="y")
    fig.legend(*axes[1].get_legend_handles_labels(), loc="upper right", fontsize=9, ncol=2)
    ra, rb = [r for recs in a.values() for r in recs], [r for recs in b.values() for r in recs]
    la, lb = run_label(ra), run_label(rb)
    runs_text = f"both: {la}" if la == lb else f"Q1.1: {la}; Q1.2: {lb}"
    fig.suptitle(textwrap.fill(f"Q1.2 (MaxPool) vs Q1.1 (no pooling) — {runs_text}", 170), fontsize=10,
                 x=0.45, y=1.05)
    return finish(fig, out_path)
