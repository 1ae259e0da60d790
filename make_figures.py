"""Regenerate every figure and figures/RESULTS.md from the saved metrics files alone, without retraining.

    python make_figures.py                  # all figures + figures/RESULTS.md, in seconds
                                            # (and the summary table of README.md beside figures/)
    python make_figures.py --allow-missing  # draw what exists, skip corrupt files with a warning, exit 0

Each figure is drawn by a function in common/ from metrics.json / summary.json files. When a file a figure
needs is missing, it names the script and command that produce it, and the exit status is 1. A corrupt (e.g.
truncated) results file is named in one line (exit 2); with --allow-missing the figure or table section that
needs it is skipped with a warning and the rest is drawn.
"""
import argparse
import sys
import time
from pathlib import Path

from common.reporting.plots import plot_q1_comparison, plot_q1_curves
from common.reporting.plots_q2 import plot_attention_maps, plot_q2_curves, plot_search
from common.reporting.plots_q2_2 import plot_attention_sites, plot_q2_2_design
from common.reporting.plots_q2_3 import plot_q2_3
from common.reporting.plots_q2_data import plot_calibration, plot_cnn_filters
from common.reporting.plots_study import plot_gradients, plot_mechanism, plot_outcomes
from common.reporting.q2_2_design import EXPERIMENTS
from common.reporting.results import (
    before_rows,
    bench_rows,
    precision_rows,
    provenance_rows,
    q1_rows,
    q2_rows,
    report_vs_ours,
    stats_rows,
    study_rows,
    sync_readme_table,
)
from common.runfiles.files import CorruptFile, exit_on_user_error, read_json, write_text
from common.runfiles.records import load_runs

OPTIONAL = ("gpu", "precision_check", "cnn_filters.json", "q2_3_cap60")


def figure_jobs(root):
    """(needed file, how to make it, draw function) for every committed figure. Figures under OPTIONAL
    (GPU runs, the precision check, the Q2.3 cap check) are drawn when their files exist and are not reported
    missing otherwise."""
    r = Path(root)
    return [
        (r / "q1_1/logits", "python q1_1_cnn.py --seeds 0", lambda: plot_q1_curves(r / "q1_1", "Q1.1 CNN")),
        (r / "q1_2/logits", "python q1_2_maxpool.py --seeds 0",
         lambda: plot_q1_curves(r / "q1_2", "Q1.2 CNN + MaxPool")),
        (r / "q1_1/logits", "python q1_1_cnn.py --seeds 0",
         lambda: plot_q1_comparison(r / "q1_1", r / "q1_2", r / "q1_2/comparison.png")),
        (r / "gpu/q1_1/logits", "bash bench/gpu_q1_reference.sh (on a GPU)",
         lambda: plot_q1_curves(r / "gpu/q1_1",
                                "Q1.1 CNN on one GPU, eager fp32, 200 epochs (bench/gpu_q1_reference.sh)")),
        (r / "q1_softmax_study/summary.json", "python q1_softmax_study.py",
         lambda: plot_outcomes(r / "q1_softmax_study")),
        (r / "q1_softmax_study/summary.json", "python q1_softmax_study.py",
         lambda: plot_mechanism(r / "q1_softmax_study")),
        (r / "q1_softmax_study/summary.json", "python q1_softmax_study.py",
         lambda: plot_gradients(r / "q1_softmax_study")),
        (r / "q2_1/cnn/metrics.json", "python q2_1_cnn_lstm.py --model cnn",
         lambda: plot_q2_curves(r / "q2_1", [m for m in ("cnn", "lstm")
                                             if (r / "q2_1" / m / "metrics.json").is_file()])),
        (r / "q2_1/cnn/trials.csv", "python q2_1_cnn_lstm.py --model cnn",
         lambda: plot_search(r / "q2_1", "cnn")),
        (r / "q2_1/lstm/trials.csv", "python q2_1_cnn_lstm.py --model lstm",
         lambda: plot_search(r / "q2_1", "lstm")),
        (r / "q2_1/cnn_filters.json", "python interpret_cnn.py",
         lambda: plot_cnn_filters(r / "q2_1/cnn_filters.json")),
        (r / "q2_2_default", "python q2_2_attention.py --setting default",
         lambda: plot_q2_2_design(r / "q2_2_default")),
        (r / "q2_2_default/lstm_attention", "python q2_2_attention.py --setting default",
         lambda: plot_attention_sites(r / "q2_2_default")),
        (r / "q2_2", "python q2_2_attention.py --setting tuned", lambda: plot_q2_2_design(r / "q2_2")),
        (r / "q2_2/lstm_attention", "python q2_2_attention.py --setting tuned",
         lambda: tuned_attention_map(r / "q2_2")),
        (r / "q2_3/summary.json", "python q2_3_multi_protein.py", lambda: plot_q2_3(r / "q2_3")),
        (r / "q2_3_cap60/summary.json", "bench/q2_3_cap_queue.sh", lambda: plot_q2_3(r / "q2_3_cap60")),
        (r / "q2_data/calibration.json", "python -m common.rna.calibrate",
         lambda: plot_calibration(read_json(r / "q2_data/calibration.json"), r / "q2_data/calibration.png")),
    ] + [(r / f"precision_check/{p}/q1_2/logits",
          f"python q1_2_maxpool.py --variant logits --precision {p} --epochs 10 "
          f"--seeds 0 1 2 --out-dir figures/precision_check/{p}",
          lambda p=p: plot_q1_curves(r / f"precision_check/{p}/q1_2", f"Q1.2 precision check, {p}"
                                     f"{' autocast' if p == 'bf16' else ''} (to set beside the "
                                     f"{'fp32' if p == 'bf16' else 'bf16'} figure)"))
         for p in ("fp32", "bf16")]


def tuned_attention_map(exp_dir):
    """The tuned setting's map: by site position where a record has the statistic, else the earlier seed-0
    map."""
    if any("attention" in rec and rec["seed"] not in EXPERIMENTS[exp_dir.name][1]
           for rec in load_runs(exp_dir / "lstm_attention")):
        return plot_attention_sites(exp_dir)
    return plot_attention_maps(exp_dir)


def guarded(what, make, allow, skipped):
    """make(); a corrupt results file is an error, or with allow (--allow-missing) a warning that skips
    `what`."""
    try:
        return make()
    except CorruptFile as e:
        if not allow:
            raise
        skipped.append(f"warning: skipped {what}: {e}")
        return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--figures", default="figures", help="folder holding the metrics files (default figures/)")
    p.add_argument("--allow-missing", action="store_true",
                   help="exit 0 when some metrics files are missing or corrupt: draw the rest, list what was "
                        "skipped")
    args = p.parse_args(argv)
    t0 = time.time()
    missing, skipped = [], []
    for needed, command, draw in figure_jobs(args.figures):
        if not Path(needed).exists():
            if any(part in OPTIONAL for part in Path(needed).parts):
                continue
            line = f"missing {needed}: run `{command}`"
            missing += [line] if line not in missing else []
            continue
        path = guarded(f"the figure that needs {needed}", draw, args.allow_missing, skipped)
        if path:
            print(f"drew {path}")
    sections = [q1_rows, study_rows, q2_rows, stats_rows, report_vs_ours, precision_rows, bench_rows,
                before_rows, provenance_rows]
    parts = [guarded(f"the RESULTS.md section {f.__name__}", lambda f=f: f(args.figures), args.allow_missing,
                     skipped) or [] for f in sections]
    results = ["# Results", "", "Generated by `python make_figures.py` from the metrics files in this "
               "folder; every number below was measured by the script named in README.md. Data sources: "
               "`bloodmnist-pbc-equivalent` is the offline PBC-derived BloodMNIST (not the official split); "
               "`simulated` is the RNAcompete simulator.", "",
               "### Q1 (BloodMNIST)", "", *parts[0], "", *[row for part in parts[1:] for row in part]]
    write_text(Path(args.figures) / "RESULTS.md", "\n".join(results) + "\n")
    print(f"wrote {Path(args.figures) / 'RESULTS.md'} in {time.time() - t0:.1f}s")
    readme = Path(args.figures).resolve().parent / "README.md"
    table = Path(args.figures) / "report_vs_ours.md"
    if table.is_file() and sync_readme_table(readme, table.read_text()):
        print(f"updated the summary table in {readme}")
    for m in missing + skipped:
        print(m, file=sys.stderr)
    if missing and not args.allow_missing:
        raise SystemExit(1)


if __name__ == "__main__":
    exit_on_user_error(main)
