"""Device, precision, malloc and seeding: what a run needs before it trains."""
import ctypes
import ctypes.util
import os
import platform
import random

import numpy as np
import torch

from common.runfiles.files import UserError
from common.runfiles.provenance import code_version


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
        raise UserError("--device mps was asked for but this torch has no MPS backend; "
                        "use --device cpu or auto")
    return name


def cpu_has_bf16():
    """Native bf16 matmuls: the CPU has AVX512-BF16 or AMX, and oneDNN (torch's CPU matmul library) may
    use them.

    ONEDNN_MAX_CPU_ISA=AVX2 (or any cap below AVX512_CORE_BF16) makes bf16 emulated, about 1 GFLOP/s as on an
    AVX2-only CPU: measured here, against ~138 uncapped; then auto must not pick bf16."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    capped = (bool(isa) and isa not in ("ALL", "DEFAULT")
              and not any(k in isa for k in ("BF16", "FP16", "AMX")))
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


def setup_device(opts, cpu_bf16_pays=True):
    """(device, precision, malloc kept) from the run options' device, precision, threads and malloc flags
    (common.runfiles.flags.RunOptions), after applying threads and malloc; the third goes into the record's
    options."""
    code_version()   # the code this run starts with, for its records
    if opts.threads:
        torch.set_num_threads(opts.threads)
    malloc_kept = set_malloc(opts.malloc)
    device = pick_device(opts.device)
    return device, resolve_precision(opts.precision, device, cpu_bf16_pays), malloc_kept
