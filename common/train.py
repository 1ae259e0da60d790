"""One training loop for every experiment, with per-epoch checkpoints for --resume."""
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .runio import UserError, save_torch


@dataclass(frozen=True)
class FitConfig:
    epochs: int
    batch_size: int
    seed: int
    select: str                 # key of evaluate()'s dict to maximise, e.g. "val_acc"
    patience: int = 0           # early stopping on `select`; 0 = never stop early
    precision: str = "fp32"     # "fp32" or "bf16" (autocast)


def autocast(device, precision):
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return nullcontext()


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def make_adam(params, lr, device):
    """Adam with the fused kernel where this torch has one for the device (one pass over the weights per step)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


def train_epoch(model, optimizer, loss_of_batch, n, batch_size, generator, device, precision):
    """One pass over n training items in a seeded random order. loss_of_batch(model, idx) -> mean loss.

    The running loss stays on the device; there is one host sync per epoch, not one per step."""
    model.train()
    order = torch.randperm(n, generator=generator).to(device)
    total = torch.zeros((), device=device)
    # A step bar only when stderr is a terminal (tqdm's disable=None): never in logs or CI output.
    for start in tqdm(range(0, n, batch_size), desc="steps", unit="batch", leave=False, disable=None):
        idx = order[start:start + batch_size]
        with autocast(device, precision):
            loss = loss_of_batch(model, idx)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach().float() * len(idx)
    return (total / n).item()


def _rng_state(generator):
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "random": random.getstate(),
             "batches": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state, generator):
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["random"])
    generator.set_state(state["batches"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fit(model, optimizer, loss_of_batch, n_train, evaluate, cfg, device, ckpt_path=None, resume=False, on_epoch=None,
        ckpt_every=1):
    """Train for cfg.epochs, evaluating after each epoch; keep the best state by cfg.select (validation).

    evaluate(model) -> dict of floats, called under inference_mode in eval mode.
    on_epoch(result) is called after every epoch with the same dict fit() returns, so the caller can
    print and write partial metrics. A checkpoint is written every ckpt_every epochs and at the end.
    Returns {"history", "best", "best_state", "stopped_early"}."""
    generator = torch.Generator().manual_seed(cfg.seed)
    history, best, best_state, start = [], {"epoch": 0, cfg.select: float("-inf")}, None, 1
    if resume and ckpt_path and Path(ckpt_path).is_file():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        _set_rng_state(ck["rng"], generator)
        history, best, best_state, start = ck["history"], ck["best"], ck["best_state"], ck["epoch"] + 1
        if ck.get("stopped_early"):
            start = cfg.epochs + 1
    elif resume and ckpt_path:
        raise UserError(f"--resume: no checkpoint at {ckpt_path}; run without --resume to start this run")
    stopped_early = False
    for epoch in range(start, cfg.epochs + 1):
        sync(device)
        t0 = time.perf_counter()
        train_loss = train_epoch(model, optimizer, loss_of_batch, n_train, cfg.batch_size, generator, device, cfg.precision)
        sync(device)
        t1 = time.perf_counter()
        model.eval()
        with torch.inference_mode(), autocast(device, cfg.precision):
            metrics = evaluate(model)
        model.train()
        sync(device)
        t2 = time.perf_counter()
        row = {"epoch": epoch, "train_loss": train_loss, **metrics,
               "seconds": t2 - t0, "train_seconds": t1 - t0, "eval_seconds": t2 - t1}
        history.append(row)
        if metrics[cfg.select] > best[cfg.select]:
            best = {"epoch": epoch, cfg.select: metrics[cfg.select]}
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        stopped_early = bool(cfg.patience) and epoch - best["epoch"] >= cfg.patience
        if ckpt_path and (epoch % ckpt_every == 0 or epoch == cfg.epochs or stopped_early):
            save_torch(ckpt_path, {"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "rng": _rng_state(generator), "history": history, "best": best,
                                   "best_state": best_state, "stopped_early": stopped_early})
        result = {"history": history, "best": best, "best_state": best_state, "stopped_early": stopped_early}
        if on_epoch:
            on_epoch(result)
        if stopped_early:
            break
    return {"history": history, "best": best, "best_state": best_state, "stopped_early": stopped_early}

