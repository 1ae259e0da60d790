"""Q2.2 figures, drawn from the per-seed records: curves and the three convergence measures per arm, and where
the attention pooling looks, by the position of the probe's site."""
from pathlib import Path

import matplotlib.ticker
import numpy as np

from common.reporting.plots import curve, finish, legend_below, plt, run_label
from common.reporting.plots_q2 import probe_weights, test_points
from common.reporting.q2_2_design import (
    EARLY_EPOCHS,
    EXPERIMENTS,
    THRESHOLDS,
    arm_runs,
    compare_arms,
    early_mean,
    first_epoch_at,
)
from common.runfiles.files import UserError, source_name

ARM_COLORS = {"lstm": "tab:purple", "lstm_attention": "tab:orange", "lstm_attention_h2": "tab:red",
              "lstm_attention_h4": "tab:brown", "lstm_self_attention": "tab:green"}
ARM_LABELS = {"lstm": "mean pooling", "lstm_attention": "attention pooling, 1 head",
              "lstm_attention_h2": "attention pooling, 2 heads",
              "lstm_attention_h4": "attention pooling, 4 heads",
              "lstm_self_attention": "self-attention block (4 heads) + mean"}


def per_seed(ax, runs, value, ylabel, title, excluded):
    """One column per arm: each seed a point (excluded seeds as open squares, labelled), the mean of the rest
    a bar."""
    for i, (arm, recs) in enumerate(runs.items()):
        color = ARM_COLORS.get(arm, "k")
        kept = [r for r in recs if r["seed"] not in excluded]
        vals = [value(r) for r in kept]
        xs = i + np.linspace(-0.12, 0.12, len(kept)) if len(kept) > 1 else [i]
        ax.plot(xs, [np.nan if v is None else v for v in vals], "o", color=color, alpha=0.8, ms=5)
        done = [v for v in vals if v is not None]
        if done and len(done) == len(vals):
            ax.hlines(np.mean(done), i - 0.25, i + 0.25, color=color, lw=2)
        for r in recs:
            if r["seed"] in excluded and value(r) is not None:   # the search's run: filled; paired-out: open
                ax.plot(i + 0.3, value(r), "s", mfc="k" if arm == "lstm" else "none", color="k", ms=6)
    if any(r["seed"] in excluded for recs in runs.values() for r in recs):
        ax.plot([], [], "s", color="k", label="mean pooling seed 0: the Q2.1 search's own run (left out)")
        ax.plot([], [], "s", mfc="none", color="k",
                label="seed 0 of the other arms (left out to keep seeds paired)")
    ax.plot([], [], "o", color="gray", label="each seed (bar: mean)")
    ax.set_xticks(range(len(runs)), [ARM_LABELS.get(a, a).replace(", ", ",\n").replace(" + ", "\n+ ")
                                     for a in runs], fontsize=7)
    ax.set_xlim(-0.5, len(runs) - 0.5)
    ax.set(ylabel=ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    legend_below(ax)


def plot_q2_2_design(exp_dir):
    """Validation Spearman per epoch of every arm; epochs to the fixed thresholds (mean vs 1-head attention);
    the early mean over epochs 1-10; epochs to 95% of the own best; test Spearman per seed."""
    exp_dir = Path(exp_dir)
    runs = arm_runs(exp_dir)
    if not runs:
        raise UserError(f"no finished Q2.2 run under {exp_dir}; run python q2_2_attention.py first")
    label, excluded, _ = EXPERIMENTS.get(exp_dir.name.removesuffix("_quick"), (exp_dir.name, (), ""))
    fig, axes = plt.subplots(2, 2, figsize=(14, 11))
    (ax_sp, ax_thr), (ax_early, ax_test) = axes
    for arm, recs in runs.items():
        kept = [r for r in recs if r["seed"] not in excluded]
        if not kept:
            continue
        curve(ax_sp, kept, "val_spearman", ARM_LABELS.get(arm, arm), ARM_COLORS.get(arm, "k"))
    ax_sp.set(xlabel="epoch", ylabel="validation Spearman ρ")
    ax_sp.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ys = [h["val_spearman"] for recs in runs.values() for r in recs for h in r["history"]]
    ax_sp.set_ylim(min(ys) - 0.01, max(ys) + 0.01)   # every epoch of every run on the axis, epoch 1 included
    ax_sp.set_title("validation Spearman per epoch (the selection metric)", fontsize=10)
    ax_sp.grid(alpha=0.3)
    legend_below(ax_sp)
    thresholds = THRESHOLDS
    pair = {a: [r for r in runs[a] if r["seed"] not in excluded]
            for a in ("lstm", "lstm_attention") if a in runs}
    budget = max(r["config"]["epochs"] for recs in runs.values() for r in recs)
    for j, (arm, recs) in enumerate(pair.items()):
        kept = [r for r in recs if r["seed"] not in excluded]
        for i, t in enumerate(thresholds):
            firsts = [first_epoch_at(r["history"], t) for r in kept]
            x = i + (j - 0.5) * 0.35
            jit = np.linspace(-0.08, 0.08, len(firsts)) if len(firsts) > 1 else [0.0]
            for dx, f in zip(jit, firsts):
                ax_thr.plot(x + dx, budget + 1 if f is None else f, "^" if f is None else "o", ms=5,
                            alpha=0.8, color=ARM_COLORS[arm], mfc="none" if f is None else ARM_COLORS[arm])
            if firsts and None not in firsts:
                ax_thr.hlines(np.mean(firsts), x - 0.15, x + 0.15, color=ARM_COLORS[arm], lw=2)
        ax_thr.plot([], [], "o", color=ARM_COLORS[arm], label=f"{ARM_LABELS[arm]}: each seed (bar: mean)")
    reached = [first_epoch_at(r["history"], t) for recs in pair.values() for r in recs for t in thresholds]
    top = max([e for e in reached if e is not None] or [1])
    if None in reached:
        ax_thr.plot([], [], "^", mfc="none", color="gray", label=f"not reached in {budget} epochs")
        top = budget + 1
    ax_thr.set_ylim(0, top + 1.5)
    ax_thr.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax_thr.set_xticks(range(len(thresholds)), [f"≥ {t:g}" for t in thresholds])
    ax_thr.set(xlabel="validation Spearman threshold (fixed before the runs)",
               ylabel="first epoch at the threshold")
    ax_thr.set_title("convergence 1: epochs to fixed thresholds", fontsize=10)
    ax_thr.grid(alpha=0.3)
    legend_below(ax_thr)
    per_seed(ax_early, runs, lambda r: early_mean(r["history"]),
             f"mean validation Spearman, epochs 1-{EARLY_EPOCHS}", f"convergence 2: mean validation Spearman "
             f"over epochs 1-{EARLY_EPOCHS} (higher = faster)", excluded)
    note = None
    # the figure's question, on the seeds both arms ran (as RESULTS.md)
    if "lstm" in runs and "lstm_attention" in runs:
        rows = compare_arms(exp_dir.name.removesuffix("_quick"), "lstm_attention", "lstm",
                            runs["lstm_attention"], runs["lstm"], thresholds, excluded)
        if rows and rows[0].get("ci95"):
            c = rows[0]
            note = (f"attention (1 head) − mean, seeds {c['seeds_a']}: {c['diff']:+.4f}, 95% CI "
                    f"[{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}] (Welch)")
    test_points(ax_test, {a: [r["test"]["spearman"] for r in recs if r["seed"] not in excluded]
                          for a, recs in runs.items()}, colors=ARM_COLORS, note=note)
    ax_test.set_xticks(range(len(runs)), [ARM_LABELS.get(a, a).replace(", ", ",\n").replace(" + ", "\n+ ")
                                          for a in runs], fontsize=7)
    ax_test.set_title("test Spearman at the best validation epoch (never used for selection)", fontsize=10)
    every = [r for recs in runs.values() for r in recs]
    seeds = sorted({r["seed"] for r in every} - set(excluded))
    kept_every = [r for r in every if r["seed"] not in excluded]
    drawn_apart = (" (seed 0 drawn apart: the search ran it)"
                   if excluded and len(seeds) < len({r["seed"] for r in every}) else "")
    fig.suptitle(f"Q2.2 at the {label}: mean pooling vs attention — seeds {seeds}{drawn_apart}\n"
                 f"{run_label(kept_every)}; epochs to 90% / 95% of each run's own best: RESULTS.md", y=1.0,
                 fontsize=11)
    fig.tight_layout()
    return finish(fig, exp_dir / "curves.png")


def plot_attention_sites(exp_dir, arm="lstm_attention"):
    """Attention per position for the top-predicted single-site test probes, three with the site in each third
    of the probe; the site-mass statistic by position (against chance and against position alone) in the
    title."""
    exp_dir = Path(exp_dir)
    excluded = EXPERIMENTS.get(exp_dir.name.removesuffix("_quick"), ("", (), ""))[1]
    recs = [r for r in arm_runs(exp_dir).get(arm, []) if "attention" in r and r["seed"] not in excluded]
    if not recs:
        raise UserError(f"no {arm} record with attention statistics under {exp_dir}; run python "
                        f"q2_2_attention.py")
    rec = recs[0]
    att, probes = rec["attention"], rec["attention"]["map_probes"]
    fig, axes = plt.subplots(len(probes), 1, figsize=(12, 1.2 * len(probes) + 2.6), squeeze=False)
    for ax, p in zip(axes[:, 0], probes):
        probe_weights(ax, p, f"site in the {p['site_bin']}; prediction {p['prediction']:.2f} (z)",
                      uniform_line=True)
    bins = "\n".join(f"{b['bin']} (n = {b['probes']}): mass {b['attention_mass']:.2f} = "
                      f"{b['ratio_to_chance']:.1f}× chance, {b['ratio_to_position_only']:.1f}× position "
                      f"alone, {b['ratio_to_backward_state']:.1f}× a backward-state rule; flank contrast "
                      f"{b['flank_contrast'] or float('nan'):.1f}"
                      for b in att["single_site_probes_by_position"]
                      if b["probes"] and "ratio_to_backward_state" in b)
    if not bins:   # a record of statistic version 1
        bins = "; ".join(f"{b['bin']}: {b['attention_mass']:.2f} = {b['ratio_to_chance']:.1f}× chance (n = "
                         f"{b['probes']})"
                         for b in att["single_site_probes_by_position"] if b["probes"])
    d = rec["data"]
    fig.suptitle(f"Q2.2 attention pooling (1 head), seed {rec['seed']}: top-predicted single-site test "
                 f"probes, 3 per site position (orange: GCAUG / UGCAUG; dotted: uniform weight)\nmass on the "
                 f"site, by its position:\n{bins}\n{source_name(d)} ({d['checksum'][:8]})", fontsize=9)
    fig.tight_layout()
    return finish(fig, exp_dir / "attention_maps.png")
