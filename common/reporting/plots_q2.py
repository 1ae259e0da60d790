"""Q2 figures, drawn only from metrics files."""
from pathlib import Path

import matplotlib.ticker
import numpy as np
import pandas as pd
from scipy import stats

from common.reporting.plots import COLORS, curve, finish, legend_below, plt, run_label, variant_runs
from common.reporting.q2_2_design import first_epoch_at
from common.reporting.stats import welch_diff
from common.runfiles.files import read_json, source_name
from common.runfiles.records import load_runs


def plot_q2_curves(exp_dir, models=("cnn", "lstm"), title="Q2.1 RBFOX1"):
    """Per model: train and validation loss per epoch; and validation Spearman of all models on one axis."""
    runs = variant_runs(exp_dir, models)
    fig, axes = plt.subplots(1, len(runs) + 1, figsize=(5.5 * (len(runs) + 1), 4.3))
    for ax, (m, recs) in zip(axes, runs.items()):
        curve(ax, recs, "train_loss", f"{m} train", COLORS.get(m, "k"))
        curve(ax, recs, "val_loss", f"{m} validation", "k")
        ax.set_title(f"{m}: masked MSE loss")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))   # epochs, not 2.5
        ax.set_ylabel("masked MSE (z-scored intensity²)")
        ax.grid(alpha=0.3)
        legend_below(ax)
    ax = axes[-1]
    for m, recs in runs.items():
        curve(ax, recs, "val_spearman", m + " (tuned)", COLORS.get(m, "k"))
        defaults = [r for r in load_runs(Path(exp_dir) / f"{m}_default") if r.get("status") == "complete"]
        if defaults:   # the homework default retrained per seed (--retrain-default): what the search gained
            curve(ax, defaults, "val_spearman", f"{m} homework default", COLORS.get(m, "k"))
            ax.lines[-1].set_linestyle("--")
    r0 = next(iter(runs.values()))[0]
    ceiling = r0.get("noise_ceiling")
    if ceiling:
        ax.axhline(ceiling, ls="--", color="gray", label=f"noise ceiling (test) {ceiling:.3f}")
    seq = r0["data"].get("ceilings", {}).get(r0["data"]["proteins"][0], {}).get("sequence_ceiling")
    if seq:
        ax.axhline(seq, ls=":", color="gray",
                   label=f"sequence ceiling (test; no model can pass it) {seq:.3f}")
    ax.set_title("validation Spearman (selection metric)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("Spearman ρ")
    ax.grid(alpha=0.3)
    legend_below(ax)
    every = [r for recs in runs.values() for r in recs]
    fig.suptitle(f"{title}: each search's selected configuration (dashed: the homework default), retrained "
                 f"per seed\n{run_label(every)}", y=1.06)
    return finish(fig, Path(exp_dir) / "loss_curves.png")


def plot_search(exp_dir, model):
    """Each Optuna trial's best validation Spearman against each hyperparameter."""
    trials = pd.read_csv(Path(exp_dir) / model / "trials.csv")
    rec = load_runs(Path(exp_dir) / model)[0]
    params = [c for c in trials.columns if c.startswith("params_")]
    fig, axes = plt.subplots(1, len(params), figsize=(3.2 * len(params), 3.4), squeeze=False)
    best = rec["config"]["search"]["best_trial"]
    for ax, col in zip(axes[0], params):
        for state, marker, color in (("COMPLETE", "o", COLORS.get(model, "k")), ("PRUNED", "x", "gray")):
            t = trials[trials.state == state]
            ax.scatter(t[col], t["value"], marker=marker, color=color, label=state.lower())
        for number, marker, label in ((0, "s", "trial 0: homework default"),
                                      (best, "*", f"trial {best}: selected")):
            t = trials[trials.number == number]
            ax.scatter(t[col], t["value"], marker=marker, s=160 if marker == "*" else 70, facecolors="none",
                       edgecolors="k", linewidths=1.2, label=label, zorder=3)
        if col in ("params_lr", "params_filters", "params_hidden", "params_batch_size"):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())   # no overlapping minor labels
        if trials[col].dropna().nunique() <= 4:   # a few discrete values (layers, hidden): one tick each
            ax.set_xticks(sorted(trials[col].dropna().unique()))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.set_xlabel(col[7:])
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("best validation Spearman")
    legend_below(axes[0][0], ncol=2)
    done = trials.state.isin(["COMPLETE", "PRUNED"])
    # stopped (SIGTERM, a crash) and retried with the same parameters
    failed = int((trials.state == "FAIL").sum())
    fig.suptitle(f"Q2.1 {model} hyperparameter search ({int(done.sum())} trials, TPE"
                 f"{f'; {failed} interrupted and retried' if failed else ''}; selected on validation: trial "
                 f"{best}) — {run_label([rec])}", fontsize=10)
    return finish(fig, Path(exp_dir) / f"search_{model}.png")


def test_points(ax, values, colors=None, note=None):
    """Each variant's seeds as points, their mean with a 95% t interval, and the difference of the last two
    variants with its Welch 95% CI written on the axes: near-equal values are not drawn as zoomed bars."""
    names = list(values)
    colors = colors or COLORS
    for i, v in enumerate(names):
        vals = np.asarray(values[v], float)
        ax.plot(np.full(len(vals), i) + np.linspace(-0.08, 0.08, len(vals)), vals, "o",
                color=colors.get(v, "k"), alpha=0.5, ms=5, label="each seed" if i == 0 else None)
        half = (stats.t.ppf(0.975, len(vals) - 1) * vals.std(ddof=1) / np.sqrt(len(vals)) if len(vals) > 1
                else 0.0)
        ax.errorbar(i + 0.25, vals.mean(), yerr=half, fmt="s", color=colors.get(v, "k"), capsize=5,
                    label="mean, 95% CI (t)" if i == 0 else None)
        ax.annotate(f"{vals.mean():.4f}\n(n={len(vals)})", (i + 0.3, vals.mean()), xytext=(6, 0),
                    textcoords="offset points", fontsize=8, va="center")
    ax.set_xticks(range(len(names)), names)
    ax.set_xlim(-0.5, len(names) - 0.2)
    ax.set_ylabel("Spearman ρ")
    if note:
        ax.text(0.5, 0.02, note, transform=ax.transAxes, ha="center", fontsize=8,
                bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
    elif len(names) >= 2:
        d = welch_diff(values[names[-1]], values[names[0]])
        ci = "no CI (n = 1)" if d["ci95"] is None else f"95% CI [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]"
        ax.text(0.5, 0.02, f"{names[-1]} − {names[0]}: {d['diff']:+.4f}, {ci} (Welch)",
                transform=ax.transAxes, ha="center", fontsize=8,
                bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
    ax.margins(y=0.25)
    legend_below(ax)


def plot_q2_2_curves(exp_dir):
    """Train/val loss and val Spearman per epoch, with and without attention (mean and range over seeds); the
    convergence answer (epochs to each fixed validation threshold, each seed a point); test Spearman per
    seed."""
    exp_dir = Path(exp_dir)
    runs = variant_runs(exp_dir, ("lstm", "lstm_attention"))
    summary = read_json(exp_dir / "summary.json")
    thresholds = summary.get("thresholds") or []
    fig, axes = plt.subplots(2, 2, figsize=(13, 10.5))
    (ax_loss, ax_sp), (ax_conv, ax_test) = axes
    for v, recs in runs.items():
        curve(ax_loss, recs, "train_loss", f"{v} train", COLORS[v])
        curve(ax_loss, recs, "val_loss", f"{v} validation", COLORS[v])
        ax_loss.lines[-1].set_linestyle("--")
        curve(ax_sp, recs, "val_spearman", v, COLORS[v])
    for t in thresholds:
        ax_sp.axhline(t, color="gray", ls=":", lw=0.8)
    ax_loss.set(xlabel="epoch", ylabel="masked MSE")
    ax_loss.set_title("masked MSE (solid train, dashed validation)", fontsize=10)
    ax_sp.set(xlabel="epoch", ylabel="Spearman ρ")
    ax_sp.set_title("validation Spearman (dotted: the fixed thresholds)", fontsize=10)
    convergence_points(ax_conv, runs, thresholds, summary["epochs"])
    test_points(ax_test, {v: summary["variants"][v]["test_spearman"] for v in summary["variants"]})
    ax_test.set_title("test Spearman at the best validation epoch", fontsize=10)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    legend_below(ax_loss)
    legend_below(ax_sp)
    every = [r for recs in runs.values() for r in recs]
    fig.suptitle(f"Q2.2 BiLSTM: mean pooling vs attention pooling ({summary['heads']} head) — "
                 f"{run_label(every)}", y=1.0)
    fig.tight_layout()
    return finish(fig, exp_dir / "curves.png")


def convergence_points(ax, runs, thresholds, epochs):
    """Epochs until validation Spearman first reaches each fixed threshold: one point per seed and variant
    (side by side), the variant's mean as a bar; a seed that never reached it is an open marker above the
    budget."""
    names = list(runs)
    width = 0.8 / max(len(names), 1)
    firsts_at = {(v, t): [first_epoch_at(r["history"], t) for r in runs[v]]
                 for v in names for t in thresholds}
    # the last variant minus the first, with its Welch CI, above each group
    for i, t in enumerate(thresholds):
        a, b = firsts_at[names[-1], t], firsts_at[names[0], t]
        if len(names) > 1 and None not in a + b:
            d = welch_diff(a, b)
            ci = "" if d["ci95"] is None else f"\n[{d['ci95'][0]:+.1f}, {d['ci95'][1]:+.1f}]"
            ax.text(i, epochs * 1.12 + 2.5, f"Δ {d['diff']:+.1f}{ci}", ha="center", va="top", fontsize=7)
    for j, v in enumerate(names):
        for i, t in enumerate(thresholds):
            firsts = firsts_at[v, t]
            x = i + (j - (len(names) - 1) / 2) * width
            reached = [f for f in firsts if f is not None]
            jitter = np.linspace(-width / 4, width / 4, len(firsts)) if len(firsts) > 1 else [0.0]
            for dx, f in zip(jitter, firsts):
                if f is None:
                    ax.plot(x + dx, epochs + 1, "^", mfc="none", color=COLORS[v], ms=6)
                else:
                    ax.plot(x + dx, f, "o", color=COLORS[v], ms=5, alpha=0.8)
            if reached and len(reached) == len(firsts):
                ax.hlines(np.mean(reached), x - width / 2.4, x + width / 2.4, color=COLORS[v], lw=2)
        ax.plot([], [], "o", color=COLORS[v], label=f"{v}: each seed (line: mean)")
    ax.plot([], [], "^", mfc="none", color="gray", label=f"not reached in {epochs} epochs")
    ax.axhline(epochs, color="gray", ls="--", lw=0.8)
    ax.set_xticks(range(len(thresholds)), [f"≥ {t:g}" for t in thresholds])
    ax.set_xlim(-0.6, len(thresholds) - 0.4)
    ax.set(xlabel="validation Spearman threshold (fixed before the runs)",
           ylabel="first epoch at the threshold")
    ax.set_ylim(0, epochs * 1.12 + 3)
    ax.set_title(f"convergence: epochs to each threshold, per seed (Δ: {names[-1]} − {names[0]}, "
                 f"Welch 95% CI)" if len(names) > 1 else "convergence: epochs to each threshold, per seed",
                 fontsize=10)
    legend_below(ax)


def probe_weights(ax, p, title, uniform_line=False):
    """One probe's attention weight per position: bases as tick labels, motif positions in orange."""
    w, seq = np.array(p["weights"]), p["sequence"]
    ax.bar(range(len(seq)), w, color=["tab:orange" if m else "tab:blue" for m in p["motif"]])
    if uniform_line:
        ax.axhline(1 / len(seq), color="gray", ls=":", lw=0.8)
    ax.set_xticks(range(len(seq)), list(seq), fontsize=7, family="monospace")
    for t, m in zip(ax.get_xticklabels(), p["motif"]):
        if m:
            t.set_color("tab:orange")
            t.set_fontweight("bold")
    ax.set_ylabel("weight", fontsize=7)
    ax.set_title(title, fontsize=8, loc="right")
    ax.set_xlim(-0.6, 40.6)


def plot_attention_maps(exp_dir):
    """Attention per position for the top-predicted test probes; bases as tick labels, motif positions
    highlighted."""
    exp_dir = Path(exp_dir)
    summary = read_json(exp_dir / "summary.json")
    # legacy: carried over by q2_2_attention.py
    att = summary.get("attention_legacy") or summary["attention"]
    probes = att["top_probes"]
    fig, axes = plt.subplots(len(probes), 1, figsize=(12, 1.25 * len(probes) + 1.2), squeeze=False)
    for ax, p in zip(axes[:, 0], probes):
        probe_weights(ax, p, f"prediction {p['prediction']:.2f} (z-score)")
    d = summary["data"]
    fig.suptitle(f"Q2.2 attention maps, top-{len(probes)} predicted test probes (orange: GCAUG / UGCAUG "
                 f"positions)\nattention mass on motif positions {att['attention_mass_on_motif']:.3f} vs "
                 f"chance {att['chance_fraction']:.3f} ({att['ratio_to_chance']:.1f}x, "
                 f"{att['probes_with_motif']} test probes with a motif) — {source_name(d)} "
                 f"({d['checksum'][:8]}), seed {att['seed']}", fontsize=9)
    fig.tight_layout()
    return finish(fig, exp_dir / "attention_maps.png")


def search_table(recs):
    """The searches' console table: parameters, validation and test numbers, speed, noise ceiling."""
    lines = [f"\n{'model':6s} {'params':>8s} {'val sp':>7s} {'test sp':>7s} {'pearson':>7s} {'mse':>6s} "
             f"{'s/epoch':>7s} {'ceiling':>7s}"]
    for r in recs:
        lines.append(f"{r['variant']:6s} {r['params']:8,d} {r['best']['val_spearman']:7.4f} "
                     f"{r['test']['spearman']:7.4f} {r['test']['pearson']:7.4f} {r['test']['mse']:6.3f} "
                     f"{r.get('seconds_per_epoch_median') or float('nan'):7.2f} "
                     f"{r.get('noise_ceiling') or float('nan'):7.4f}")
    return "\n".join(lines)
