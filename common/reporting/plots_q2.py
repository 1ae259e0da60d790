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
        ax.axhline(seq, ls=":", color="gray", label=f"sequence ceiling (test; no model can pass it) {seq:.3f}")
    ax.set_title("validation Spearman (selection metric)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("Spearman ρ")
    ax.grid(alpha=0.3)
    legend_below(ax)
    every = [r for recs in runs.values() for r in recs]
    fig.suptitle(f"{title}: each search's selected configuration (dashed: the homework default), retrained per seed\n"
                 f"{run_label(every)}", y=1.06)
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
        for number, marker, label in ((0, "s", "trial 0: homework default"), (best, "*", f"trial {best}: selected")):
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
    failed = int((trials.state == "FAIL").sum())   # stopped (SIGTERM, a crash) and retried with the same parameters
    fig.suptitle(f"Q2.1 {model} hyperparameter search ({int(done.sum())} trials, TPE"
                 f"{f'; {failed} interrupted and retried' if failed else ''}; selected on validation: trial {best}) — "
                 f"{run_label([rec])}", fontsize=10)
    return finish(fig, Path(exp_dir) / f"search_{model}.png")


def test_points(ax, values, colors=None, note=None):
    """Each variant's seeds as points, their mean with a 95% t interval, and the difference of the last two
    variants with its Welch 95% CI written on the axes: near-equal values are not drawn as zoomed bars."""
    names = list(values)
    colors = colors or COLORS
    for i, v in enumerate(names):
        vals = np.asarray(values[v], float)
        ax.plot(np.full(len(vals), i) + np.linspace(-0.08, 0.08, len(vals)), vals, "o", color=colors.get(v, "k"), alpha=0.5,
                ms=5, label="each seed" if i == 0 else None)
        half = stats.t.ppf(0.975, len(vals) - 1) * vals.std(ddof=1) / np.sqrt(len(vals)) if len(vals) > 1 else 0.0
        ax.errorbar(i + 0.25, vals.mean(), yerr=half, fmt="s", color=colors.get(v, "k"), capsize=5,
                    label="mean, 95% CI (t)" if i == 0 else None)
        ax.annotate(f"{vals.mean():.4f}\n(n={len(vals)})", (i + 0.3, vals.mean()), xytext=(6, 0), textcoords="offset points",
                    fontsize=8, va="center")
    ax.set_xticks(range(len(names)), names)
    ax.set_xlim(-0.5, len(names) - 0.2)
    ax.set_ylabel("Spearman ρ")
    if note:
        ax.text(0.5, 0.02, note, transform=ax.transAxes, ha="center", fontsize=8,
                bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
    elif len(names) >= 2:
        d = welch_diff(values[names[-1]], values[names[0]])
        ci = "no CI (n = 1)" if d["ci95"] is None else f"95% CI [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]"
        ax.text(0.5, 0.02, f"{names[-1]} − {names[0]}: {d['diff']:+.4f}, {ci} (Welch)", transform=ax.transAxes,
                ha="center", fontsize=8, bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
    ax.margins(y=0.25)
    legend_below(ax)


def plot_q2_2_curves(exp_dir):
    """Train/val loss and val Spearman per epoch, with and without attention (mean and range over seeds); the
    convergence answer (epochs to each fixed validation threshold, each seed a point); test Spearman per seed."""
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
    fig.suptitle(f"Q2.2 BiLSTM: mean pooling vs attention pooling ({summary['heads']} head) — {run_label(every)}",
                 y=1.0)
    fig.tight_layout()
    return finish(fig, exp_dir / "curves.png")


def convergence_points(ax, runs, thresholds, epochs):
    """Epochs until validation Spearman first reaches each fixed threshold: one point per seed and variant (side by
    side), the variant's mean as a bar; a seed that never reached it is an open marker above the budget."""
    names = list(runs)
    width = 0.8 / max(len(names), 1)
    firsts_at = {(v, t): [first_epoch_at(r["history"], t) for r in runs[v]] for v in names for t in thresholds}
    for i, t in enumerate(thresholds):   # the last variant minus the first, with its Welch CI, above each group
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
    ax.set(xlabel="validation Spearman threshold (fixed before the runs)", ylabel="first epoch at the threshold")
    ax.set_ylim(0, epochs * 1.12 + 3)
    ax.set_title(f"convergence: epochs to each threshold, per seed (Δ: {names[-1]} − {names[0]}, Welch 95% CI)"
                 if len(names) > 1 else "convergence: epochs to each threshold, per seed", fontsize=10)
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
    """Attention per position for the top-predicted test probes; bases as tick labels, motif positions highlighted."""
    exp_dir = Path(exp_dir)
    summary = read_json(exp_dir / "summary.json")
    att = summary.get("attention_legacy") or summary["attention"]   # legacy: carried over by q2_2_attention.py
    probes = att["top_probes"]
    fig, axes = plt.subplots(len(probes), 1, figsize=(12, 1.25 * len(probes) + 1.2), squeeze=False)
    for ax, p in zip(axes[:, 0], probes):
        probe_weights(ax, p, f"prediction {p['prediction']:.2f} (z-score)")
    d = summary["data"]
    fig.suptitle(f"Q2.2 attention maps, top-{len(probes)} predicted test probes (orange: GCAUG / UGCAUG positions)\n"
                 f"attention mass on motif positions {att['attention_mass_on_motif']:.3f} vs chance {att['chance_fraction']:.3f} "
                 f"({att['ratio_to_chance']:.1f}x, {att['probes_with_motif']} test probes with a motif) — "
                 f"{source_name(d)} ({d['checksum'][:8]}), seed {att['seed']}", fontsize=9)
    fig.tight_layout()
    return finish(fig, exp_dir / "attention_maps.png")


def plot_q2_3(exp_dir):
    """Per protein: test Spearman of the single-protein model, the multi-protein model (seen), the few-shot model (a
    new protein given by its own profile) and the profile-only baseline (no weights); the paired comparisons."""
    exp_dir = Path(exp_dir)
    s = read_json(exp_dir / "summary.json")
    rows = s["rows"]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(8, 1.7 * len(rows) + 2), 5))
    series = [("single", "single-protein model", "tab:gray"), ("multi_seen", "multi-protein, seen (identity embedding)", "tab:blue"),
              ("fewshot", "few-shot: new protein given by its own profile", "tab:orange"),
              ("profile_only", "profile-only baseline (no learned weights)", "tab:olive"),
              ("others_mean", "other proteins' mean target (no learned weights)", "tab:purple")]
    w = 0.8 / len(series)
    for i, (key, label, color) in enumerate(series):
        vals = [r[key] if r.get(key) is not None else np.nan for r in rows]
        errs = [r.get(key + "_std", 0.0) for r in rows]
        mean = s["mean"].get(key)
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * w, vals, w, yerr=errs, capsize=2, color=color,
                      label=f"{label}: mean {mean:.3f}" if mean is not None else label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, [r.get("label", r["protein"]).replace(" (", "\n(") for r in rows], fontsize=8)
    ax.set_ylabel("test Spearman ρ (SetB)")
    ax.grid(alpha=0.3, axis="y")
    legend_below(ax, ncol=2)
    lines = [f"{k}: {c['diff']:+.4f}" + ("" if c["ci95"] is None else f", 95% CI [{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}]")
             for k, c in s.get("comparisons", {}).items()]
    ax.text(0.01, 0.98, "\n".join(lines) + f"\n(paired t over proteins, each the mean of seeds {s['seeds']})",
            transform=ax.transAxes, fontsize=8, va="top", bbox={"facecolor": "white", "alpha": 0.85, "lw": 0})
    top = max(v for r in rows for v in (r.get(k) for k, *_ in series) if v is not None)
    ax.set_ylim(0, top * 1.45)   # room above the bars for the text
    d = s["data"]
    one = next(Path(exp_dir).glob("seed*/seen/metrics.json"), None)
    device = read_json(one)["device_name"] if one else s["device"]
    nc = len(s.get("not_converged", []))
    conv = "every run converged" if not nc else f"{nc} run{'s' * (nc > 1)} NOT converged"
    sim = "; sim-* = invented motifs, not the real proteins" if d["source"] == "simulated" else ""
    ax.set_title(f"Q2.3 multi-protein model — {source_name(d)} ({d['checksum'][:8]}){sim}\n{s['encoder']} encoder "
                 f"({s.get('encoder_source', '').split(' (')[0]}), at most {s['epochs']} epochs with early stopping "
                 f"(patience {s.get('patience')}), {conv}; n = {len(s['seeds'])} seed{'s' * (len(s['seeds']) > 1)}, {device}", fontsize=9)
    return finish(fig, exp_dir / "per_protein.png")


def plot_cnn_filters(path):
    """PWM heatmaps of the strongest first-layer CNN filters, with their consensus and correlation."""
    d = read_json(path)
    rows = d["filters"][: d["show"]]
    fig, axes = plt.subplots(2, (len(rows) + 1) // 2, figsize=(3.2 * ((len(rows) + 1) // 2), 5.6), squeeze=False)
    for ax, r in zip(axes.flat, rows):
        pwm = np.array(r["pwm"]).T                                             # (4, k)
        image = ax.imshow(pwm, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        ax.set_yticks(range(4), list("ACGU"))
        ax.set_xticks(range(pwm.shape[1]), list(r["consensus"]), fontsize=8, family="monospace")
        ax.set_title(f"filter {r['filter']}: top-1% enr. {r['top1pct_enrichment']:.2f}, ρ={r['spearman_with_binding']:+.2f}", fontsize=8)
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    dd = d["data"]
    fig.suptitle(f"Q2.1 CNN first-layer filters as PWMs (top {d['top_n']} validation windows each), "
                 f"most enriched in the top 1% bound probes first; "
                 f"x labels: consensus base (n: a position with under 1 bit of information)\n"
                 f"{dd['source']} ({dd['checksum'][:8]}), {d['trial']}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.94, 1))
    bar = fig.colorbar(image, cax=fig.add_axes((0.95, 0.12, 0.012, 0.72)))
    bar.set_label("base probability in the filter's top windows", fontsize=8)
    return finish(fig, Path(path).parent / "cnn_filters.png")


def plot_calibration(cal, path):
    """The calibrated simulator beside the real-data anchors, from calibration.json: SetB target distribution,
    mean z by number of UGCAUG sites, and the default models' numbers against the real ranges."""
    fig, axes = plt.subplots(1, 3, figsize=(18, 4.8), gridspec_kw={"width_ratios": [1.1, 0.9, 1.4], "wspace": 0.4})
    ax = axes[0]
    h = cal["setb_z_histogram"]
    ax.stairs(h["counts"], h["edges"], fill=True, color="tab:gray", label=f"SetB probes ({sum(h['counts']):,})")
    ax.set_yscale("log")
    q = cal["setb_z"]
    for key, ls in (("q01", ":"), ("q50", "--"), ("q99", "-."), ("max", "-")):
        ax.axvline(q[key], color="tab:blue", ls=ls, lw=1, label=f"simulator {key} {q[key]:.2f}")
    ax.axvspan(-2, 10, color="tab:orange", alpha=0.08, label="real RBFOX1: about -2 to 10 z")
    ax.set_xlabel("course-normalised SetB target (z)")
    ax.set_ylabel("probes (log scale)")
    ax.set_title("SetB targets", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    ax = axes[1]
    sites = cal["mean_z_by_ugcaug_sites"]
    ks = [k for k, v in sites.items() if v["n"]]
    ax.plot(range(len(ks)), [sites[k]["mean_z"] for k in ks], "o-", color="tab:purple")
    for i, k in enumerate(ks):
        ax.annotate(f"n={sites[k]['n']:,}", (i, sites[k]["mean_z"]), textcoords="offset points", xytext=(4, -12), fontsize=8)
    ax.set_xticks(range(len(ks)), ks)
    ax.set_xlabel("UGCAUG sites in the probe (targets clipped at the 99.95th percentile)")
    ax.set_ylabel("mean target z")
    g = cal["gcaug"]
    ax.set_title(f"GCAUG in {100 * g['share']:.1f}% of probes: mean z {g['mean_z_with']:.2f} vs {g['mean_z_without']:.2f}",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax = axes[2]
    rows = [("best val MSE", "best_val_mse", (0.31, 0.36)), ("best val Spearman", "best_val_spearman", (0.577, 0.650)),
            ("test Spearman", "test_spearman", (0.577, 0.68)), ("test Pearson", "test_pearson", (0.78, 0.82))]
    for i, (_label, key, (lo, hi)) in enumerate(rows):
        ax.fill_betweenx([i - 0.3, i + 0.3], lo, hi, color="tab:orange", alpha=0.3, label="real RBFOX1 (anchor range)" if i == 0 else None)
        for j, m in enumerate(x for x in ("cnn", "lstm") if x in cal):
            v = cal[m][key]
            ax.plot(v, i + (j - 0.5) * 0.25, "o", color=COLORS[m], label=f"simulator, default {m} (seed 0)" if i == 0 else None)
            ax.annotate(f"{v:.3f}", (v, i + (j - 0.5) * 0.25), textcoords="offset points", xytext=(6, -3), fontsize=8)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.set_xlim(0.2, 1.0)
    ax.set_xlabel("value (best validation epoch; test once)")
    ax.set_title("homework-default models: simulator vs real-data anchors", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8)
    fig.suptitle(f"Q2 data calibration — simulated RBFOX1, preset {cal['preset']} (md5 {cal['data_checksum'][:8]}); "
                 f"models on {cal['environment']['device_name']}, CPU", fontsize=11)
    return finish(fig, path)
