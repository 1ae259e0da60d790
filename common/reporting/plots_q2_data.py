"""Figures of the Q2 data and of what the Q2.1 CNN learned from it: the simulator's calibration against the
real file, and the CNN's filters; drawn only from JSON files."""
from pathlib import Path

import numpy as np

from common.reporting.plots import COLORS, finish, plt
from common.runfiles.files import read_json


def plot_cnn_filters(path):
    """PWM heatmaps of the strongest first-layer CNN filters, with their consensus and correlation."""
    d = read_json(path)
    rows = d["filters"][: d["show"]]
    fig, axes = plt.subplots(2, (len(rows) + 1) // 2, figsize=(3.2 * ((len(rows) + 1) // 2), 5.6),
                             squeeze=False)
    for ax, r in zip(axes.flat, rows):
        pwm = np.array(r["pwm"]).T                                             # (4, k)
        image = ax.imshow(pwm, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        ax.set_yticks(range(4), list("ACGU"))
        ax.set_xticks(range(pwm.shape[1]), list(r["consensus"]), fontsize=8, family="monospace")
        ax.set_title(f"filter {r['filter']}: top-1% enr. {r['top1pct_enrichment']:.2f}, "
                     f"ρ={r['spearman_with_binding']:+.2f}", fontsize=8)
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
    fig, axes = plt.subplots(1, 3, figsize=(18, 4.8),
                             gridspec_kw={"width_ratios": [1.1, 0.9, 1.4], "wspace": 0.4})
    ax = axes[0]
    h = cal["setb_z_histogram"]
    ax.stairs(h["counts"], h["edges"], fill=True, color="tab:gray",
              label=f"SetB probes ({sum(h['counts']):,})")
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
        ax.annotate(f"n={sites[k]['n']:,}", (i, sites[k]["mean_z"]), textcoords="offset points",
                    xytext=(4, -12), fontsize=8)
    ax.set_xticks(range(len(ks)), ks)
    ax.set_xlabel("UGCAUG sites in the probe (targets clipped at the 99.95th percentile)")
    ax.set_ylabel("mean target z")
    g = cal["gcaug"]
    ax.set_title(f"GCAUG in {100 * g['share']:.1f}% of probes: mean z {g['mean_z_with']:.2f} vs "
                 f"{g['mean_z_without']:.2f}", fontsize=10)
    ax.grid(alpha=0.3)
    ax = axes[2]
    rows = [("best val MSE", "best_val_mse", (0.31, 0.36)),
            ("best val Spearman", "best_val_spearman", (0.577, 0.650)),
            ("test Spearman", "test_spearman", (0.577, 0.68)), ("test Pearson", "test_pearson", (0.78, 0.82))]
    for i, (_label, key, (lo, hi)) in enumerate(rows):
        ax.fill_betweenx([i - 0.3, i + 0.3], lo, hi, color="tab:orange", alpha=0.3,
                         label="real RBFOX1 (anchor range)" if i == 0 else None)
        for j, m in enumerate(x for x in ("cnn", "lstm") if x in cal):
            v = cal[m][key]
            ax.plot(v, i + (j - 0.5) * 0.25, "o", color=COLORS[m],
                    label=f"simulator, default {m} (seed 0)" if i == 0 else None)
            ax.annotate(f"{v:.3f}", (v, i + (j - 0.5) * 0.25), textcoords="offset points", xytext=(6, -3),
                        fontsize=8)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.set_xlim(0.2, 1.0)
    ax.set_xlabel("value (best validation epoch; test once)")
    ax.set_title("homework-default models: simulator vs real-data anchors", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8)
    fig.suptitle(f"Q2 data calibration — simulated RBFOX1, preset {cal['preset']} "
                 f"(md5 {cal['data_checksum'][:8]}); models on {cal['environment']['device_name']}, CPU",
                 fontsize=11)
    return finish(fig, path)
