"""Flags shared by every script, device choice and seeding."""
import argparse
import ctypes
import ctypes.util
import os
import platform
import random

import numpy as np
import torch

from .runio import UserError, code_version


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help with each flag's default written once: "(default: X)" is added only where the help text does not
    already give it as "(default ...)"."""

    def _get_help_string(self, action):
        text = action.help or ""
        return text if "(default" in text else super()._get_help_string(action)


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def add_common_args(p, *, epochs, batch_size, lr):
    """The flags every script has. Defaults are the homework protocol."""
    p.add_argument("--epochs", type=positive_int, default=epochs,
                   help=f"training epochs (default {epochs or 'per model, see above'}, the homework protocol)")
    p.add_argument("--batch-size", type=positive_int, default=batch_size,
                   help=f"minibatch size (default {batch_size or 'from the configuration, see above'})")
    p.add_argument("--lr", type=positive_float, default=lr,
                   help=f"Adam learning rate (default {lr or 'from the configuration, see above'})")
    p.add_argument("--seed", type=int, default=0, help="seed for random, numpy, torch and batch order (default 0)")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="several seeds: one run per seed under <variant>/seed<k>/, plus <variant>/aggregate.json (mean ± std)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
                   help="training device; auto picks cuda, then mps, then cpu")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="autocast precision; auto = bf16 on CPUs with native bf16 (AVX512-BF16/AMX) for the models where it "
                        "measured faster (Q1 CNNs, BiLSTM), else fp32 (the Q2 CNN, and CUDA: measured faster there)")
    p.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                   help="channels_last memory format for 2D convs; auto = on")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--malloc", choices=["auto", "keep", "default"], default="auto",
                   help="glibc malloc: keep = reuse freed memory instead of returning blocks over 32 MB to the OS "
                        "(Q1.1 on CPU: 24.6 -> 14.9 s/epoch in the benchmark, README); auto = keep on Linux with glibc")
    p.add_argument("--out-dir", default="figures", help="where metrics.json files and figures go (default figures/)")
    p.add_argument("--run-dir", default="runs", help="where per-epoch checkpoints go, for --resume (default runs/)")
    p.add_argument("--checkpoint-every", type=positive_int, default=1,
                   help="write the --resume checkpoint every N epochs (the Q1.1 one is ~400 MB with Adam state)")
    p.add_argument("--note", default="", help="free text stored in metrics.json (e.g. that the run shared its GPU)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 epochs on a small subset; outputs go to <experiment>_quick")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last completed epoch")
    p.add_argument("--force", action="store_true", help="replace a finished run's metrics.json (refused otherwise)")
    return p


def pick_device(name):
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps was asked for but this torch has no MPS backend; use --device cpu or auto")
    return name


def cpu_has_bf16():
    """Native bf16 matmuls: the CPU has AVX512-BF16 or AMX, and oneDNN (torch's CPU matmul library) may use them.

    ONEDNN_MAX_CPU_ISA=AVX2 (or any cap below AVX512_CORE_BF16) makes bf16 emulated, about 1 GFLOP/s as on an
    AVX2-only CPU: measured here, against ~138 uncapped; then auto must not pick bf16."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    capped = bool(isa) and isa not in ("ALL", "DEFAULT") and not any(k in isa for k in ("BF16", "FP16", "AMX"))
    return ("avx512_bf16" in flags or "amx_bf16" in flags) and not capped


def resolve_precision(name, device, cpu_bf16_pays=True):
    """--precision auto: bf16 autocast on CPUs with native bf16 where the model is matmul-bound
    (cpu_bf16_pays); fp32 elsewhere. Measured (README, Performance): bf16 wins for the Q1 CNNs and the
    BiLSTM; the Q2 CNN is launch-bound, and autocast's casts make it slower (1.32 vs 1.04 s/epoch at
    batch 64); on an H100 these small models are launch-bound too, and fp32 was faster."""
    if name != "auto":
        return name
    if device == "cpu" and cpu_bf16_pays and cpu_has_bf16():
        return "bf16"
    return "fp32"


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seeds_of(args):
    """The list of seeds to run: --seeds if given, else [--seed]."""
    return list(args.seeds) if args.seeds else [args.seed]


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4   # mallopt parameters, glibc malloc.h


def set_malloc(mode):
    """Make glibc keep freed memory for reuse. Returns True if the setting took effect.

    By default glibc serves every allocation over 32 MB with a fresh mmap and unmaps it on free, so
    a large tensor made each step (the Q1.1 Linear's 25.7M-weight gradient and its bf16 copies) is
    page-faulted and zeroed by the kernel each time: about half of a Q1.1 CPU step (measured, README).
    M_MMAP_MAX=0 serves everything from the heap; M_TRIM_THRESHOLD=1 GiB stops the heap's free top
    from being handed back, so the process keeps its peak memory instead of returning it to the OS."""
    if mode == "default":
        return False
    libc = ctypes.util.find_library("c") if platform.libc_ver()[0] == "glibc" else None
    if libc is None:
        if mode == "keep":
                raise UserError("--malloc keep needs Linux with glibc; use --malloc auto or default here")
        return False
    mallopt = ctypes.CDLL(libc).mallopt
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))


def setup_device(args, cpu_bf16_pays=True):
    """(device, precision) from --device/--precision, after applying --threads and --malloc."""
    code_version()   # the code this run starts with, for its records
    if args.threads:
        torch.set_num_threads(args.threads)
    args.malloc_kept = set_malloc(args.malloc)   # recorded in metrics.json with the other flags
    device = pick_device(args.device)
    return device, resolve_precision(args.precision, device, cpu_bf16_pays)
