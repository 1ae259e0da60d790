"""The Q2.3 figure (per protein, every arm and both baselines), drawn only from its summary.json."""
from pathlib import Path

import numpy as np

from common.reporting.plots import finish, legend_below, plt
from common.runfiles.files import read_json, source_name


def plot_q2_3(exp_dir):
    """Per protein: test Spearman of the single-protein model, the multi-protein model (seen), the few-shot
    model (a new protein given by its own profile) and the profile-only baseline (no weights); the paired
    comparisons."""
    exp_dir = Path(exp_dir)
    s = read_json(exp_dir / "summary.json")
    rows = s["rows"]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(8, 1.7 * len(rows) + 2), 5))
    series = [("single", "single-protein model", "tab:gray"),
              ("multi_seen", "multi-protein, seen (identity embedding)", "tab:blue"),
              ("fewshot", "few-shot: new protein given by its own profile", "tab:orange"),
              ("noprofile", "no-profile control (the few-shot model, every profile zero)", "tab:brown"),
              ("profile_only", "profile-only baseline (no learned weights)", "tab:olive"),
              ("others_mean", "other proteins' mean target (no learned weights)", "tab:purple")]
    series = [x for x in series if s["mean"].get(x[0]) is not None]   # the control only where it was run
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
    lines = [f"{k}: {c['diff']:+.4f}" + ("" if c["ci95"] is None
                                         else f", 95% CI [{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}]")
             for k, c in s.get("comparisons", {}).items()]
    ax.text(0.01, 0.98, "\n".join(lines) + f"\n(paired t over proteins, each the mean of seeds {s['seeds']}; "
            "bars: mean over seeds, whiskers: ± 1 SD over seeds; the baselines have no seed)",
            transform=ax.transAxes, fontsize=8, va="top", bbox={"facecolor": "white", "alpha": 0.85, "lw": 0})
    top = max(v for r in rows for v in (r.get(k) for k, *_ in series) if v is not None)
    ax.set_ylim(0, top * (1.25 + 0.05 * len(lines)))   # room above the bars for the text
    d = s["data"]
    # records of one experiment may come from several machines (sessions): name each CPU and its count
    names = [read_json(f)["device_name"] for f in Path(exp_dir).glob("seed*/**/metrics.json")]
    short = [n.replace("(R)", "").replace(" Processor", "") for n in names]
    device = (", ".join(f"{short.count(n)} on {n}" for n in sorted(set(short))) + " (records)"
              if short else s["device"])
    nc, cap = len(s.get("not_converged", [])), len(s.get("ran_to_cap", []))
    conv = "every run converged" if not nc else f"{nc} run{'s' * (nc > 1)} NOT converged"
    conv += f", {cap} ran to the cap" if cap else ", none ran to the cap"
    sim = "; sim-* = invented motifs, not the real proteins" if d["source"] == "simulated" else ""
    ax.set_title(f"Q2.3 multi-protein model — {source_name(d)} ({d['checksum'][:8]}){sim}\n{s['encoder']} "
                 f"encoder ({s.get('encoder_source', '').split(' (')[0]}), at most {s['epochs']} epochs with "
                 f"early stopping (patience {s.get('patience')}): {conv}\nn = {len(s['seeds'])} "
                 f"seed{'s' * (len(s['seeds']) > 1)}; {device}", fontsize=9)
    return finish(fig, exp_dir / "per_protein.png")
