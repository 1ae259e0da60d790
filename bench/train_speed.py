"""Training-speed benchmark: our training path against a plain PyTorch reference of the same model.

    python bench/train_speed.py                # all models, 3 repeats; writes figures/bench/train_speed.json
    python bench/train_speed.py --models q1_2 --repeats 5

For each model it times training steps (forward, backward, optimizer step) over --steps minibatches of 64
after a warm-up, --repeats times, and one validation pass; seconds per epoch = n_train / throughput +
validation seconds. Medians are reported, with the ratio to the reference measured in the same run.
Every row runs in its own fresh Python process (the malloc setting is process-wide, and no row should
inherit another's heap or warm caches); the rows run one after another, never side by side.
  reference, Q1: fp32, NCHW, medmnist's per-item BloodMNIST Dataset (PIL, ToTensor, Normalize) + DataLoader,
                 torch.optim.Adam with its default (foreach) implementation
  reference, Q2: fp32, TensorDataset + DataLoader, default Adam; for the CNN, nn.Conv1d with -inf masking
                 (ours: one matmul over unfolded windows, zero masking; tested equal); for the BiLSTM, the
                 usual packed nn.LSTM(bidirectional=True) (ours reverses each sequence within its length
                 instead: same outputs, tested against the packed one, no packing cost)
  ours:          whole split as one tensor batched by a seeded randperm, fused Adam, no per-step .item(),
                 plus the flags named in each row (channels_last, bf16 autocast, malloc keep = --malloc keep);
                 the row marked (auto) is what the scripts' auto defaults pick on this machine
GFLOP/s for the CNNs count 2 FLOPs per multiply-add, forward + backward = 3 x forward.
"""
import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))   # bench/speed_parts.py
from speed_parts import (  # noqa: E402
    PackedBiLSTM,
    PlainCNN,
    loader_batches,
    make_step,
    measured_ceiling,
    peak_gflops,
    q1_forward_flops,
    q1_reference_loader,
    reference_of,
    tensor_batches,
    time_steps,
    variants_of,
)

from common.blood.data import load_bloodmnist, resolve_npz  # noqa: E402
from common.blood.models import BloodCNN  # noqa: E402
from common.rna.models import RNACNN, RNALSTM  # noqa: E402
from common.runfiles.files import exit_on_user_error, write_json  # noqa: E402
from common.runfiles.provenance import cpu_model
from common.training.device import cpu_has_bf16, set_malloc  # noqa: E402
from common.training.loop import make_adam  # noqa: E402

N_TRAIN = {"q1_1": 11959, "q1_2": 11959, "q2_cnn": 96261, "q2_lstm": 96261, "q2_attention": 96261}
N_VAL = {"q1_1": 1712, "q1_2": 1712, "q2_cnn": 24065, "q2_lstm": 24065, "q2_attention": 24065}


def bench_q1(name, label, cfg, args, device):
    pool = name == "q1_2"
    npz, _ = resolve_npz(args.npz, download=False)
    torch.manual_seed(0)
    model = BloodCNN(pool=pool).to(device)
    mf = torch.channels_last if cfg.get("channels_last") else torch.contiguous_format
    model = model.to(memory_format=mf)
    if cfg.get("reference"):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        batches = loader_batches(q1_reference_loader(npz, "train", True))
        val = q1_reference_loader(npz, "val", False)
        val_pass = lambda: [model(x.to(device)).argmax(1) for x, _ in val]  # noqa: E731
    else:
        data, _ = load_bloodmnist(npz=npz, device=device)
        opt = make_adam(model.parameters(), 1e-3, device)
        x, y = data["train"]
        batches = tensor_batches((x.contiguous(memory_format=mf), y), 64, device)
        xv = data["val"][0].contiguous(memory_format=mf)
        val_pass = lambda: [model(xv[s:s + 2048]).argmax(1) for s in range(0, len(xv), 2048)]  # noqa: E731
    return measure(name, label, cfg, model, opt, nn.CrossEntropyLoss(), batches, val_pass, args, device,
                   flops=3 * q1_forward_flops(pool))


def bench_q2(name, label, cfg, args, device):
    n, bs = args.q2_n, cfg.get("batch", 64)
    g = torch.Generator().manual_seed(0)
    x = nn.functional.one_hot(torch.randint(0, 4, (n, 41), generator=g), 4).float()
    valid = torch.ones(n, 41, dtype=torch.bool)
    valid[::3, 39:] = False
    x[~valid] = 0
    y = torch.randn(n, generator=g)
    torch.manual_seed(0)
    model = {"q2_cnn": lambda: PlainCNN() if cfg.get("reference") else RNACNN(),
             "q2_lstm": lambda: PackedBiLSTM() if cfg.get("packed") else RNALSTM(),
             "q2_attention": lambda: RNALSTM(attention_heads=1)}[name]().to(device)
    if cfg.get("reference"):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        ds = torch.utils.data.TensorDataset(x, valid, y)
        batches = loader_batches(torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=True))
        vl = torch.utils.data.DataLoader(ds, batch_size=bs)
        val_pass = lambda: [model(a.to(device), b.to(device)) for a, b, _ in vl]  # noqa: E731
    else:
        opt = make_adam(model.parameters(), 1e-3, device)
        xd, vd, yd = x.to(device), valid.to(device), y.to(device)
        batches = tensor_batches((xd, vd, yd), bs, device)
        val_pass = lambda: [model(xd[s:s + 8192], vd[s:s + 8192]) for s in range(0, n, 8192)]  # noqa: E731
    return measure(name, label, cfg, model, opt, nn.MSELoss(), batches, val_pass, args, device,
                   n_val_measured=n)


def measure(name, label, cfg, model, opt, loss_fn, batches, val_pass, args, device, flops=None,
            n_val_measured=None):
    precision = cfg.get("precision", "fp32")
    step = make_step(model, opt, loss_fn, precision, device)
    bs = cfg.get("batch", 64)
    per_step, val_s = [], []
    ctx = ((lambda: torch.autocast(torch.device(device).type, dtype=torch.bfloat16)) if precision == "bf16"
           else nullcontext)
    for _ in range(args.repeats):
        model.train()
        per_step.append(time_steps(step, batches, args.warmup, args.steps, args.min_seconds))
        model.eval()
        t0 = time.perf_counter()
        with torch.inference_mode(), ctx():
            val_pass()
        v = time.perf_counter() - t0
        # scale a subset to the full split
        val_s.append(v * N_VAL[name] / n_val_measured if n_val_measured else v)
    s = statistics.median(per_step)
    row = {"model": name, "variant": label, "config": cfg, "batch_size": bs, "steps": args.steps,
           "repeats": args.repeats, "min_seconds": args.min_seconds, "step_seconds_median": s,
           "samples_per_s": bs / s, "val_seconds_median": statistics.median(val_s),
           "epoch_seconds": N_TRAIN[name] * s / bs + statistics.median(val_s), "step_seconds_all": per_step}
    if flops:
        row["gflops"] = flops * bs / s / 1e9
    return row


def run_one(args, name, index, device):
    """Child process: one row, printed as one JSON line."""
    label, cfg = variants_of(name, args.all_rows)[index]
    set_malloc(cfg.get("malloc", "default"))
    fn = bench_q1 if name.startswith("q1") else bench_q2
    print(json.dumps(fn(name, label, cfg, args, device)))


def main(argv=None):
    p = argparse.ArgumentParser(description="Benchmark training speed against a plain reference "
                                            "implementation.")
    p.add_argument("--models", nargs="+", default=list(N_TRAIN), choices=list(N_TRAIN),
                   help="models to benchmark")
    p.add_argument("--steps", type=int, default=30, help="timed training steps per repeat")
    p.add_argument("--min-seconds", type=float, default=2.0,
                   help="time at least this long per repeat (more steps if needed)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before each repeat")
    p.add_argument("--repeats", type=int, default=3, help="repeats; medians are reported")
    p.add_argument("--q2-n", type=int, default=8192, help="synthetic probes for the Q2 models (timing only)")
    p.add_argument("--npz", default=None, help="BloodMNIST npz (else $BLOODMNIST_NPZ or data/bloodmnist.npz)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--out", default="figures/bench/train_speed.json", help="where to write the JSON results")
    p.add_argument("--no-ceiling", action="store_true",
                   help="skip the measured GEMM ceiling (eight 2048^3 GEMMs per precision)")
    p.add_argument("--all-rows", action="store_true",
                   help="also the bf16 rows on a CPU without native bf16 (emulated there: minutes per row)")
    # internal: one row, in a child
    p.add_argument("--row", nargs=2, metavar=("MODEL", "INDEX"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.row:
        return run_one(args, args.row[0], int(args.row[1]), device)
    if any(m.startswith("q1") for m in args.models):
        resolve_npz(args.npz, download=False)   # fail now, in one line, rather than in every child
    env = {"cpu": cpu_model(), "threads": torch.get_num_threads(), "torch": torch.__version__,
           "device": device, "python": platform.python_version(), "peak_gflops_estimate": peak_gflops(),
           "date": time.strftime("%Y-%m-%d %H:%M"),
           "isolation": "one fresh process per row, rows run one after another",
           "native_bf16": cpu_has_bf16(), "gemm_gflops_measured": measured_ceiling(args.no_ceiling)}
    gemm = env["gemm_gflops_measured"]
    print(f"{env['cpu']}, {env['threads']} threads, torch {env['torch']}, device {device}; "
          f"peak estimate {env['peak_gflops_estimate']['fp32']:.0f} GFLOP/s fp32, "
          f"{env['peak_gflops_estimate']['bf16']:.0f} bf16; 2048^3 GEMM measured "
          + ", ".join(f"{'—' if v is None else f'{v:.0f}'} {k}" for k, v in gemm.items())
          + ("" if env["native_bf16"] or args.all_rows
             else "; no native bf16: bf16 rows and ceiling left out (--all-rows)"))
    passthrough = ["--steps", str(args.steps), "--min-seconds", str(args.min_seconds), "--warmup",
                   str(args.warmup), "--repeats", str(args.repeats), "--q2-n", str(args.q2_n)]
    passthrough += ((["--npz", args.npz] if args.npz else [])
                    + (["--threads", str(args.threads)] if args.threads else []))
    passthrough += ["--all-rows"] if args.all_rows else []
    rows = []
    for name in args.models:
        for index, (label, _) in enumerate(variants_of(name, args.all_rows)):
            out = subprocess.run([sys.executable, __file__, "--row", name, str(index), *passthrough],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"benchmark row {name} / {label} failed:\n{out.stderr.strip()}")
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{name:12s} {label:48s} {row['samples_per_s']:9.0f} samples/s  epoch "
                  f"{row['epoch_seconds']:7.2f}s"
                  + (f"  {row['gflops']:6.1f} GFLOP/s" if "gflops" in row else ""), flush=True)
    for r in rows:
        if "gflops" in r:
            precision = r["config"].get("precision", "fp32")
            r["fraction_of_peak"] = r["gflops"] / env["peak_gflops_estimate"][precision]
            if gemm.get(precision):
                r["fraction_of_measured_gemm"] = r["gflops"] / gemm[precision]
        ref = reference_of(r, rows)
        r["reference_variant"] = ref["variant"]
        r["speedup_vs_reference"] = ref["epoch_seconds"] / r["epoch_seconds"]
    print(f"\n{'model':12s} {'variant':48s} {'s/epoch':>8s} {'x ref':>6s}  reference")
    for r in rows:
        print(f"{r['model']:12s} {r['variant']:48s} {r['epoch_seconds']:8.2f} "
              f"{r['speedup_vs_reference']:6.2f}  {r['reference_variant']}")
    write_json(args.out, {"environment": env, "args": {k: v for k, v in vars(args).items() if k != "row"},
                          "results": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    exit_on_user_error(main)
