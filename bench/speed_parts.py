"""The parts of bench/train_speed.py besides its timing loop: FLOP counts and the machine's ceiling, the
plain PyTorch references (a Conv1d CNN with -inf masking, a packed BiLSTM, DataLoader batches), one training
step, and the table of rows (which rows run, which one the scripts' auto defaults pick, which reference each
row is compared with)."""
import os
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.rna.models import RNACNN  # noqa: E402
from common.runfiles.provenance import cpu_model  # noqa: E402
from common.training.device import cpu_has_bf16, resolve_precision  # noqa: E402


def q1_forward_flops(pool):
    """Multiply-adds x 2 of one 28x28 image through BloodCNN."""
    flops, side, chans = 0, 28, [3, 32, 64, 128]
    for c_in, c_out in zip(chans, chans[1:]):
        flops += 2 * side * side * c_out * c_in * 9
        side = side // 2 if pool else side
    return flops + 2 * (128 * side * side * 256 + 256 * 8)


def peak_gflops():
    """Rough peak: cores x base clock x FLOPs/cycle/core. AMD family 26 (Zen 5) has two 512-bit FMA pipes
    (64 fp32, 128 bf16 FLOPs/cycle); other AVX-512 CPUs are assumed to have one (32 fp32, 64 bf16)."""
    mhz, family = 0.0, ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("cpu MHz"):
                mhz = max(mhz, float(line.split(":")[1]))
            if line.startswith("cpu family"):
                family = line.split(":")[1].strip()
    except (OSError, ValueError):
        pass
    cores, ghz = torch.get_num_threads(), (mhz / 1000 or 2.5)
    fp32 = 64 if "AMD" in cpu_model() and family == "26" else 32
    return {"fp32": cores * ghz * fp32, "bf16": cores * ghz * fp32 * (2 if cpu_has_bf16() else 1), "ghz": ghz,
            "cores": cores, "fp32_flops_per_cycle": fp32,
            "note": "estimate at the reported clock; boost clocks are higher"}


def gemm_gflops(precision, n=2048, repeats=7):
    """What this machine's matmul reaches in practice: an n x n x n GEMM, median of repeats (a measured
    ceiling beside the clock-based estimate, which boost clocks exceed)."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def measured_ceiling(skip):
    """{precision: GFLOP/s of a 2048^3 GEMM, or None}: bf16 only where the CPU has native bf16 (emulated,
    eight GEMMs take over ten minutes); nothing when skip (the test of this script)."""
    if skip:
        return {"fp32": None, "bf16": None}
    return {"fp32": gemm_gflops("fp32"), "bf16": gemm_gflops("bf16") if cpu_has_bf16() else None}


class PlainCNN(RNACNN):
    """The usual way to write the Q2 CNN (what RNACNN computed before its unfolded-matmul form):
    nn.Conv1d on (B, 4, L), padding positions set to -inf, max over positions. Same parameters."""

    def encode(self, x, valid):
        h = torch.relu(self.conv(nn.functional.pad(x.transpose(1, 2), self.pad)))   # (B, L, 4) -> (B, F, L)
        return h.masked_fill(~valid[:, None, :], float("-inf")).amax(2)


class PackedBiLSTM(nn.Module):
    """The usual way to write the Q2 BiLSTM: nn.LSTM(bidirectional=True) over pack_padded_sequence,
    mean-pooled."""

    def __init__(self, hidden=64, mlp_hidden=64):
        super().__init__()
        self.lstm = nn.LSTM(4, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(nn.Linear(2 * hidden, mlp_hidden), nn.ReLU(), nn.Linear(mlp_hidden, 1))

    def forward(self, x, valid):
        lengths = valid.sum(1)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True,
                                                total_length=x.shape[1])
        return self.head(h.sum(1) / lengths[:, None]).squeeze(-1)


def time_steps(step, batches, warmup, steps, min_seconds):
    """Seconds per step: at least `steps` steps and at least min_seconds of them (the Q2 CNN's 30 steps
    take 20 ms, too short to time on a shared machine)."""
    for b in batches(warmup):
        step(*b)
    done, t0 = 0, time.perf_counter()
    while done < steps or time.perf_counter() - t0 < min_seconds:
        for b in batches(steps):
            step(*b)
        done += steps
    return (time.perf_counter() - t0) / done


def loader_batches(loader):
    it = iter(loader)

    def take(k):
        nonlocal it
        for _ in range(k):
            try:
                yield next(it)
            except StopIteration:
                it = iter(loader)
                yield next(it)
    return take


def tensor_batches(tensors, bs, device):
    n = len(tensors[0])
    g = torch.Generator().manual_seed(0)
    order, pos = torch.randperm(n, generator=g), 0

    def take(k):
        nonlocal order, pos
        for _ in range(k):
            if pos + bs > n:
                order, pos = torch.randperm(n, generator=g), 0
            idx = order[pos:pos + bs].to(device)
            pos += bs
            yield tuple(t[idx] for t in tensors)
    return take


def make_step(model, optimizer, loss_fn, precision, device):
    ctx = ((lambda: torch.autocast(torch.device(device).type, dtype=torch.bfloat16)) if precision == "bf16"
           else nullcontext)

    def step(*batch):
        *inputs, target = batch
        with ctx():
            loss = loss_fn(model(*inputs).float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def q1_reference_loader(npz, split, shuffle):
    """medmnist's per-item path: PIL image -> ToTensor -> Normalize(0.5, 0.5), batched by a DataLoader."""
    import medmnist
    from torchvision import transforms
    root = tempfile.mkdtemp()
    os.symlink(os.path.abspath(npz), os.path.join(root, "bloodmnist.npz"))
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean=[0.5], std=[0.5])])
    ds = medmnist.BloodMNIST(split=split, root=root, transform=tf, target_transform=lambda y: int(y[0]))
    return torch.utils.data.DataLoader(ds, batch_size=64, shuffle=shuffle, num_workers=0)


# Each row: (label, config). "reference" rows are plain PyTorch; "malloc": "keep" is --malloc keep;
# variants_of() labels (auto) the row the scripts' auto defaults pick on this machine.
KEEP = {"malloc": "keep"}
VARIANTS = {
    "q1": [("reference (fp32, NCHW, DataLoader)", {"reference": True}),
           ("ours fp32 NCHW", {}),
           ("ours fp32 channels_last", {"channels_last": True}),
           ("ours fp32 channels_last, malloc keep", {"channels_last": True, **KEEP}),
           ("ours bf16 channels_last", {"precision": "bf16", "channels_last": True}),
           ("ours bf16 channels_last, malloc keep", {"precision": "bf16", "channels_last": True, **KEEP})],
    "q2": [("reference (fp32, DataLoader)", {"reference": True}),
           ("ours fp32", {}),
           ("ours bf16", {"precision": "bf16"}),
           ("ours fp32, malloc keep", {**KEEP}),
           ("ours bf16, malloc keep", {"precision": "bf16", **KEEP}),
           ("reference (fp32, DataLoader), batch 256", {"reference": True, "batch": 256}),
           ("ours fp32, malloc keep, batch 256", {"batch": 256, **KEEP}),
           ("ours bf16, malloc keep, batch 256", {"precision": "bf16", "batch": 256, **KEEP})],
}

def variants_of(name, all_rows=False):
    """The rows of a model. On a CPU without native bf16 (AVX512-BF16 or AMX) the bf16 rows are left out
    unless all_rows: emulated bf16 runs at about 1 GFLOP/s there (measured on an AVX2-only EPYC, against about
    30 in fp32), a row would take minutes, and auto never picks it."""
    rows = VARIANTS["q1" if name.startswith("q1") else "q2"]
    if not (all_rows or cpu_has_bf16()):
        rows = [(label, cfg) for label, cfg in rows if cfg.get("precision") != "bf16"]
    # the plain BiLSTM packs; the unpacked rows run our BiLSTM through the plain loader
    if name == "q2_lstm":
        rows = [("reference, packed nn.LSTM (DataLoader)", {"reference": True, "packed": True})] + [
            (label.replace("reference (fp32, DataLoader)",
                           "plain loader, our unpacked BiLSTM (fp32, DataLoader)"), cfg)
            for label, cfg in rows]
    return [(f"{label} (auto)" if is_auto(name, cfg) else label, cfg) for label, cfg in rows]


def is_auto(name, cfg):
    """Does this row run what the scripts' auto defaults pick here (batch 64, as the scripts resolve
    --precision, --channels-last and --malloc)? Same rule as q2_1/q2_3: bf16 does not pay for the Q2 CNN."""
    precision = resolve_precision("auto", "cpu", cpu_bf16_pays=(name != "q2_cnn"))
    return (not cfg.get("reference") and "batch" not in cfg and cfg.get("malloc") == "keep"
            and cfg.get("precision", "fp32") == precision
            and cfg.get("channels_last", False) == name.startswith("q1"))


def reference_of(row, rows):
    """The plain reference at the row's batch size: the packed BiLSTM where there is one, else the plain loop.
    A reference row itself is compared with the first (plainest) reference."""
    refs = [x for x in rows if x["model"] == row["model"] and x["config"].get("reference")]
    if row["config"].get("reference"):
        return refs[0]
    same = sorted((x for x in refs if x["batch_size"] == row["batch_size"]),
                  key=lambda x: not x["config"].get("packed"))
    return (same or refs)[0]
