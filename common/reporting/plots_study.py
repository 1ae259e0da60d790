"""Figures of the softmax failure study, drawn from its summary.json and per-seed files."""
from pathlib import Path

import numpy as np

from common.blood.data import CLASSES
from common.reporting.plots import COLORS, finish, plt
from common.reporting.study import OUTCOMES, load_study
from common.runfiles.files import UserError, read_json

OUTCOME_COLORS = {"collapsed": "tab:red", "partial": "tab:orange", "healthy": "tab:green"}
MODEL_TITLES = {"q1_1": "Q1.1 (no pooling)", "q1_2": "Q1.2 (MaxPool)"}


def _summary(out):
    path = Path(out) / "summary.json"
    if not path.is_file():
        raise UserError(f"{path} is missing; run python q1_softmax_study.py first")
    return read_json(path)


def _source(summary):
    d = summary["data"]
    return (f"{d['source']} ({(d.get('checksum') or d['md5'])[:8]}), {summary['device_name']}, "
            f"{summary['precision']}")


def plot_outcomes(out):
    """Per model: outcome counts of softmax vs logits (stacked bars, collapse probability with its 95% CI),
    and each seed's validation accuracy coloured by its outcome."""
    s = _summary(out)
    models = list(s["models"])
    fig, axes = plt.subplots(2, len(models), figsize=(5.2 * len(models), 7.5), squeeze=False)
    for j, m in enumerate(models):
        ax, ax2 = axes[0, j], axes[1, j]
        variants = list(s["models"][m])
        for i, v in enumerate(variants):
            r, bottom = s["models"][m][v], 0
            for o in OUTCOMES:
                ax.bar(i, r[o], bottom=bottom, color=OUTCOME_COLORS[o], label=o if i == 0 else None,
                       width=0.6)
                if r[o]:
                    ax.text(i, bottom + r[o] / 2, str(r[o]), ha="center", va="center", color="white",
                            fontweight="bold")
                bottom += r[o]
            lo, hi = r["ci95"]
            ax.text(i, r["n"] * 1.02, f"P(collapse) = {r['p_collapse']:.2f}\n95% CI [{lo:.2f}, {hi:.2f}]",
                    ha="center", va="bottom", fontsize=8)
            accs = [r["val_acc"][str(k)] for k in r["seeds"]]
            jitter = np.linspace(-0.15, 0.15, len(accs))
            ax2.scatter(i + jitter, accs, c=[OUTCOME_COLORS[r["per_seed"][str(k)]] for k in r["seeds"]], s=22,
                        edgecolor="k", linewidth=0.3)
        epochs = {v: s["models"][m][v]["epochs"] for v in variants}
        labels = [f"{v}\n(n = {s['models'][m][v]['n']}, {'/'.join(map(str, epochs[v]))} ep.)"
                  for v in variants]
        for a in (ax, ax2):
            a.set_xticks(range(len(variants)), labels)
            a.set_xlim(-0.6, len(variants) - 0.4)
        ax.set_ylim(0, max(s["models"][m][v]["n"] for v in variants) * 1.5)
        ax.set_ylabel("seeds")
        ax.set_title(MODEL_TITLES.get(m, m))
        ax.legend(loc="upper center", ncol=3, fontsize=8)
        ax2.set_ylabel("validation accuracy after the short run")
        ax2.set_ylim(0, 1)
        ax2.grid(alpha=0.3)
    fig.suptitle(f"Softmax before CrossEntropyLoss: outcome per seed\n{_source(s)}", fontsize=10)
    return finish(fig, Path(out) / "outcomes.png")


def _pick(runs, model, variant, outcome):
    for rec in runs.get(model, {}).get(variant, []):
        if rec["outcome"] == outcome:
            return rec
    return None


def plot_mechanism(out):
    """Row-normalised validation confusion matrices: a collapsed softmax seed, a partial one, a healthy
    softmax seed and a logits run (the first seed of each kind found; Q1.1 preferred)."""
    runs = load_study(out)
    s = _summary(out)
    picks = []
    for title, variant, outcome in (("collapsed softmax", "softmax", "collapsed"),
                                    ("partial softmax", "softmax", "partial"),
                                    ("healthy softmax", "softmax", "healthy"),
                                    ("logits control", "logits", "healthy")):
        rec = next((r for m in ("q1_1", "q1_2") if (r := _pick(runs, m, variant, outcome))), None)
        if rec:
            picks.append((title, rec))
    if not picks:
        raise UserError(f"no study runs under {out}")
    fig, axes = plt.subplots(1, len(picks), figsize=(4.3 * len(picks), 4.6), squeeze=False)
    for ax, (title, rec) in zip(axes[0], picks):
        cm = np.asarray(rec["val_report"]["confusion"], float)
        recall = cm / cm.sum(1, keepdims=True).clip(min=1)
        ax.imshow(recall, vmin=0, vmax=1, cmap="Blues")
        for (i, k), val in np.ndenumerate(recall):
            if val >= 0.005:
                ax.text(k, i, f"{val:.2f}"[1:] if val < 1 else "1", ha="center", va="center", fontsize=6.5,
                        color="white" if val > 0.6 else "black")
        ax.set_xticks(range(8), [c[:5] for c in CLASSES], rotation=60, fontsize=7)
        ax.set_yticks(range(8), [c[:5] for c in CLASSES], fontsize=7)
        ax.set_xlabel("predicted class")
        ax.set_title(f"{title}\n{MODEL_TITLES[rec['model']]} seed {rec['seed']}, {rec['epochs']} ep.: "
                     f"acc {rec['val_acc']:.3f}", fontsize=9)
    axes[0, 0].set_ylabel("true class (rows: recall)")
    fig.suptitle(f"What each outcome predicts: validation confusion matrices, rows normalised\n{_source(s)}",
                 fontsize=10)
    return finish(fig, Path(out) / "mechanism.png")


def plot_gradients(out):
    """First conv layer's gradient norm and the training loss per step of epoch 1: median over seeds (band:
    range) of collapsed softmax, other softmax seeds, and logits."""
    runs = load_study(out)
    s = _summary(out)
    models = list(s["models"])
    fig, axes = plt.subplots(2, len(models), figsize=(5.5 * len(models), 7), squeeze=False, sharex="col")
    groups = (("softmax, collapsed", "softmax", lambda r: r["outcome"] == "collapsed", "tab:red"),
              ("softmax, not collapsed", "softmax", lambda r: r["outcome"] != "collapsed", "tab:orange"),
              ("logits", "logits", lambda r: True, COLORS["logits"]))
    for j, m in enumerate(models):
        for label, variant, keep, color in groups:
            recs = [r for r in runs[m].get(variant, []) if keep(r)]
            if not recs:
                continue
            n = recs[0]["steps_per_epoch"]
            for ax, key in ((axes[0, j], "first_layer_grad_norm"), (axes[1, j], "step_loss")):
                ys = np.array([r[key][:n] for r in recs])
                x = np.arange(1, ys.shape[1] + 1)
                ax.plot(x, np.median(ys, 0), color=color, label=f"{label} (median of {len(recs)} seeds)")
                ax.fill_between(x, ys.min(0), ys.max(0), color=color, alpha=0.15, linewidth=0)
        axes[0, j].set_yscale("log")
        axes[0, j].set_ylabel("‖∂loss/∂W‖ of the first conv layer")
        axes[0, j].set_title(f"{MODEL_TITLES.get(m, m)}: epoch 1")
        axes[0, j].legend(fontsize=7)
        axes[1, j].set_ylabel("training loss (batch)")
        axes[1, j].axhline(np.log(7 + np.e) - 1, color="gray", lw=0.8, ls=":",
                           label="softmax variant's loss floor log(7 + e) - 1 = 1.27")
        axes[1, j].legend(fontsize=7)
        axes[1, j].set_xlabel("training step (batch of 64)")
        for ax in axes[:, j]:
            ax.grid(alpha=0.3)
    fig.suptitle("Why softmax-before-CE stalls: first-layer gradients vanish once the output saturates\n"
                 f"{_source(s)}", fontsize=10)
    return finish(fig, Path(out) / "gradients.png")
