"""Q2.1 interpretation — what did the CNN's first-layer filters learn? Do they find (U)GCAUG?

For the CNN selected by q2_1_cnn_lstm.py (its best trial's weights in runs/q2_1/cnn/), each filter's position
weight matrix is built from the validation-probe windows that activate it most (top --top-n windows, bases
counted per position; windows overlapping padding or N are skipped). Filters are ranked by the Spearman
correlation of their max activation over a probe with the measured binding; the consensus of the strongest
is printed (a base where a position has >= 1 bit of information, else "n"). Two rankings are reported:
Spearman of a filter's max activation with binding over all probes (dominated by the many background probes,
so composition filters score well), and enrichment: its mean max activation on the top 1% bound probes over
its mean on all probes (what separates strong binders). The figure shows the top filters by enrichment.

Reproduce (after q2_1_cnn_lstm.py --model cnn):
    python interpret_cnn.py
Writes figures/q2_1/cnn_filters.json and figures/q2_1/cnn_filters.png (redrawn by make_figures.py).
"""
import argparse
from pathlib import Path

import numpy as np
import torch

from common.reporting.plots_q2_data import plot_cnn_filters
from common.rna.fit import load_q2
from common.rna.format import ALPHABET
from common.rna.models import build_rna_model
from common.runfiles.files import UserError, exit_on_user_error, load_torch, read_json, write_json
from common.runfiles.flags import HelpFormatter
from common.training.metrics import masked_spearman


def filter_pwms(model, split, top_n):
    """Per filter: (k, 4) base frequencies of its top-activating windows, and its max activation per probe."""
    with torch.inference_mode():
        x = split["x"]
        pad = model.pad
        h = torch.relu(model.conv(torch.nn.functional.pad(x.transpose(1, 2), pad)))   # (N, F, L)
        h = h.masked_fill(~split["valid"][:, None, :], 0.0)
    k = model.conv.kernel_size[0]
    xp = torch.nn.functional.pad(x, (0, 0, pad[0], pad[1]))                    # (N, L + k - 1, 4)
    clean = (xp.amax(-1) == 1)                                                 # a real base, not N or padding
    pwms = []
    for f in range(h.shape[1]):
        flat = h[:, f].flatten()
        order = torch.argsort(flat, descending=True)
        counts, used = torch.zeros(k, 4), 0
        for idx in order[: top_n * 4].tolist():
            n, pos = divmod(idx, h.shape[2])                                   # window = xp[n, pos:pos + k]
            if flat[idx] <= 0 or used == top_n:
                break
            if clean[n, pos:pos + k].all():
                counts += xp[n, pos:pos + k]
                used += 1
        pwms.append((counts / max(used, 1)).numpy())
    return pwms, h.amax(2)


def consensus(pwm, min_bits=1.0):
    p = np.clip(pwm, 1e-9, 1)
    bits = 2 + (p * np.log2(p)).sum(1)
    return "".join(ALPHABET[i] if b >= min_bits else "n" for i, b in zip(pwm.argmax(1), bits)), bits


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--metrics", default="figures/q2_1/cnn/metrics.json", help="the Q2.1 CNN's metrics.json")
    p.add_argument("--run-dir", default="runs/q2_1/cnn", help="where q2_1 saved the trials' weights")
    p.add_argument("--top-n", type=int, default=300, help="top-activating windows per filter")
    p.add_argument("--show", type=int, default=8, help="filters in the figure")
    args = p.parse_args(argv)
    if not Path(args.metrics).is_file():
        raise UserError(f"{args.metrics} not found: run `python q2_1_cnn_lstm.py --model cnn` first")
    rec = read_json(args.metrics)
    trial = Path(args.run_dir) / f"trial{rec['config']['search']['best_trial']}.pt"
    if not trial.is_file():
        raise UserError(f"{trial} not found: the weights stay in runs/ on the machine that ran "
                        "q2_1_cnn_lstm.py")
    saved = load_torch(trial, "rerun `python q2_1_cnn_lstm.py --model cnn --force` to make it again",
                       weights_only=False)
    model = build_rna_model("cnn", **saved["hp"])
    model.load_state_dict(saved["state"])
    model.eval()
    data_dir = (rec.get("options") or rec["config"]).get("data_dir")   # run options apart since 2026-12-02
    data, record = load_q2(data_dir, [rec["config"]["protein"]], "cpu")
    if record["checksum"] != rec["data"]["checksum"]:
        raise UserError(f"data {record['path']} differs from the one the CNN was trained on "
                        f"({rec['data']['checksum'][:8]})")
    va = data["val"]
    pwms, act = filter_pwms(model, va, args.top_n)
    y, m = va["y"][:, 0], va["y_mask"][:, 0].bool()
    top = torch.topk(y.masked_fill(~m, float("-inf")), max(1, int(0.01 * int(m.sum())))).indices
    enrichment = (act[top].mean(0) / act[m].mean(0).clamp(min=1e-9)).tolist()
    rows = []
    for f, pwm in enumerate(pwms):
        cons, bits = consensus(pwm)
        rows.append({"filter": f, "spearman_with_binding": masked_spearman(act[:, f], y, m),
                     "top1pct_enrichment": enrichment[f], "consensus": cons, "bits": bits.tolist(),
                     "pwm": pwm.tolist(), "has_GCAUG": "GCAUG" in cons,
                     "has_GCAUG_like": any(m in cons for m in ("GCAUG", "GCACG", "UGCAU", "CAUGU"))})
    rows.sort(key=lambda r: -r["top1pct_enrichment"])
    out = {"data": record, "trial": trial.name, "hp": saved["hp"], "top_n": args.top_n, "show": args.show,
           "filters": rows}
    path = Path(args.metrics).parent.parent / "cnn_filters.json"
    for r in rows[: args.show]:
        print(f"filter {r['filter']:3d}  top-1% enrichment {r['top1pct_enrichment']:5.2f}  "
              f"Spearman(max activation, binding) {r['spearman_with_binding']:+.3f}  "
              f"consensus {r['consensus']}")
    n = sum(r["has_GCAUG"] for r in rows[: args.show])
    by_sp = sorted(rows, key=lambda r: -r["spearman_with_binding"])[: args.show]
    out["summary"] = {"gcaug_in_top_by_enrichment": n,
                      "gcaug_in_top_by_spearman": sum(r["has_GCAUG"] for r in by_sp),
                      "gcaug_filters": sum(r["has_GCAUG"] for r in rows), "filters": len(rows)}
    write_json(path, out)
    print(f"{n} of the {args.show} most enriched filters contain GCAUG in their consensus "
          f"({out['summary']['gcaug_in_top_by_spearman']} of the top {args.show} by Spearman; "
          f"{out['summary']['gcaug_filters']} of {len(rows)} filters in all); "
          f"figure: {plot_cnn_filters(path)}")


if __name__ == "__main__":
    exit_on_user_error(main)
