"""The whole protocol on one GPU in one call that ends before a time budget.

Order:
  1. a one-epoch check of CUDA graphs against eager on Q1.1 (same seed; losses must agree), on CUDA only;
  2. Q1.1 and Q1.2, both variants, seeds 0, 1, 2, 200 epochs (12 runs);
  3. then as much as fits: Q2.2 at the homework-default setting (seeds 1-3 x both poolings, 50 epochs), then
     the Q2.1 searches (20 trials each).
Every run writes under figures/gpu/ (checkpoints under runs/gpu/). Finished runs are skipped and unfinished
ones resumed, so calling it again continues where the last call stopped. Q1 runs get --stop-at, so they stop
at an epoch end with a checkpoint before the budget; Q2 steps are stopped by a timeout (finished seeds and
trials are kept; the Q2.1 study resumes). A summary table is printed at the end.

    python bench/gpu_protocol.py --budget-s 540          # on the GPU machine: one call of at most 9 minutes
    python bench/gpu_protocol.py --quick                  # CPU smoke run of the same steps (1 epoch, subsets)

Needs BLOODMNIST_NPZ (or data/bloodmnist.npz) for Q1; Q2 uses the course files or the simulator.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
def q1_runs(seeds):
    return [(q, script, v, s) for q, script in (("q1_1", "q1_1_cnn.py"), ("q1_2", "q1_2_maxpool.py"))
            for v in ("logits", "softmax") for s in seeds]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget-s", type=float, default=540,
                   help="stop everything before this many seconds (default 540)")
    p.add_argument("--margin-s", type=float, default=None,
                   help="seconds kept free at the end for the last epoch, writes and the summary "
                        "(default 45; quick: 0)")
    p.add_argument("--out-dir", default="figures/gpu",
                   help="where metrics and figures go (default figures/gpu)")
    p.add_argument("--run-dir", default="runs/gpu", help="where checkpoints go (default runs/gpu)")
    p.add_argument("--device", default="auto", help="passed to every script (default auto)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run of the same steps: --quick and 1 epoch each, seed 0 only, "
                        "1 trial per search")
    p.add_argument("--no-q2", action="store_true", help="only the Q1 runs")
    return p.parse_args(argv)


def status_of(path):
    try:
        return json.loads(Path(path).read_text()).get("status", "running")
    except (OSError, ValueError):
        return None


def q1_step(args, q, script, variant, seed, stop_at):
    exp = f"{q}_quick" if args.quick else q
    metrics = Path(args.out_dir) / exp / variant / f"seed{seed}" / "metrics.json"
    ckpt = Path(args.run_dir) / exp / variant / f"seed{seed}" / "checkpoint.pt"
    cmd = [script, "--variant", variant, "--seeds", str(seed), "--out-dir", args.out_dir,
           "--run-dir", args.run_dir, "--device", args.device, "--checkpoint-every", "20",
           "--stop-at", f"{stop_at:.0f}"]
    cmd += ["--quick", "--epochs", "1"] if args.quick else []
    cmd += ["--resume"] if ckpt.is_file() else (["--force"] if metrics.is_file() else [])
    return f"{q} {variant} seed {seed}", cmd, metrics


def q2_steps(args):
    quick = ["--quick"] if args.quick else []
    exp = "_quick" if args.quick else ""
    out = ["--out-dir", args.out_dir, "--device", args.device]
    seeds = ["1"] if args.quick else ["1", "2", "3"]
    return [("q2_2 seeds x 2 variants", ["q2_2_attention.py", "--setting", "default", "--seeds", *seeds,
                                          *(["--epochs", "50"] if not args.quick else []), *quick, *out],
             Path(args.out_dir) / f"q2_2_default{exp}" / "summary.json"),
            ("q2_1 searches", ["q2_1_cnn_lstm.py", "--trials", "1" if args.quick else "20", "--resume",
                               "--run-dir", args.run_dir, *quick, *out],
             Path(args.out_dir) / f"q2_1{exp}" / "lstm" / "metrics.json")]


def run(cmd, log, timeout):
    with open(log, "w") as f:
        try:
            return subprocess.run([sys.executable, *cmd], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                  timeout=max(1, timeout)).returncode
        except subprocess.TimeoutExpired:
            return "timeout"


def graphs_check(args, deadline):
    """On CUDA only: bench/cuda_graphs_check.py (eager vs graphed Q1.1 epoch)."""
    out = Path(args.out_dir) / "cuda_graphs_check.json"
    if out.is_file():
        return "done before", out
    code = run(["bench/cuda_graphs_check.py", "--out", str(out), "--device", args.device]
               + (["--quick"] if args.quick else []),
               Path(args.out_dir) / "logs" / "cuda_graphs_check.log", deadline - time.time())
    return code, out


def main(argv=None):
    args = parse_args(argv)
    started = time.time()
    margin = args.margin_s if args.margin_s is not None else (0 if args.quick else 45)
    deadline = started + args.budget_s
    stop_at = deadline - margin
    (Path(args.out_dir) / "logs").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    rows = []
    code, _ = graphs_check(args, stop_at)
    rows.append(("cuda graphs check", code, None))
    runs = q1_runs((0,) if args.quick else (0, 1, 2))
    steps = [q1_step(args, *q, stop_at) for q in runs] + ([] if args.no_q2 else q2_steps(args))
    for label, cmd, metrics in steps:
        if status_of(metrics) == "complete" or (metrics.name != "metrics.json" and metrics.is_file()):
            rows.append((label, "done before", metrics))
            continue
        left = stop_at - time.time()
        if left <= 0:
            rows.append((label, "not started (budget)", metrics))
            continue
        t0 = time.time()
        code = run(cmd, Path(args.out_dir) / "logs" / (label.replace(" ", "_") + ".log"), left)
        rows.append((label, f"rc {code}, {time.time() - t0:.0f} s", metrics))
    print(f"\n{'step':28s} {'this call':24s} {'status':10s} result")
    for label, what, metrics in rows:
        status = (status_of(metrics) if metrics and metrics.name == "metrics.json" else
                  ("written" if metrics and metrics.is_file() else ""))
        result = ""
        if status == "complete":
            m = json.loads(metrics.read_text())
            t = m.get("test", {})
            result = (f"test acc {t['acc']:.4f} auc {t.get('auc', float('nan')):.4f}, "
                      f"{m['seconds_per_epoch_median']:.2f} s/epoch, {m['train_seconds']:.0f} s"
                      if "acc" in t else f"test Spearman {t.get('spearman', float('nan')):.4f}")
        print(f"{label:28s} {str(what):24s} {status or '-':10s} {result}")
    print(f"total {time.time() - started:.0f} s of a {args.budget_s:.0f} s budget")


if __name__ == "__main__":
    main()
