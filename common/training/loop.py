"""One training loop for every experiment, with per-epoch checkpoints for --resume."""
import random
import signal
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from common.runfiles.files import UserError, load_torch, save_torch


@dataclass(frozen=True)
class FitConfig:
    epochs: int
    batch_size: int
    seed: int
    select: str                 # key of evaluate()'s dict to maximise, e.g. "val_acc"
    patience: int = 0           # early stopping on `select`; 0 = never stop early
    precision: str = "fp32"     # "fp32" or "bf16" (autocast)
    cuda_graphs: str = "off"    # replay forward + backward + Adam step of full batches as one CUDA graph:
                                # "on" (strict: a capture error stops the run), "auto" (guarded: eager on any
                                # capture error or first-step mismatch, with one line), "off"
    stop_at: float = 0.0        # wall-clock time (time.time()) after which to stop at an epoch end; 0 = never


# Set by the SIGTERM handler (stop_on_sigterm): fit() stops at the end of the running epoch, after a
# checkpoint.
STOP = threading.Event()


def stop_on_sigterm():
    """On SIGTERM (what a cluster scheduler sends before it preempts a job) finish the running epoch, write
    the checkpoint, and return from fit() with interrupted=True, instead of dying mid-epoch. Call from a
    script's main."""
    def handler(signum, frame):
        STOP.set()
        print("\nSIGTERM: stopping at the end of this epoch; continue later with the same command and "
              "--resume", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, handler)


def epoch_printer(prefix, epochs, keys):
    """fit()'s on_epoch that prints one line per epoch: prefix, epoch/epochs, the history keys given,
    seconds."""
    def on_epoch(result):
        r = result["history"][-1]
        values = " ".join(f"{k.replace('train_', '')} {r[k]:.4f}" for k in keys if k in r)
        print(f"{prefix} epoch {r['epoch']:{max(2, len(str(epochs)))}d}/{epochs} "
              f"{values} {r['seconds']:.1f}s", flush=True)
    return on_epoch


def autocast(device, precision, cache_enabled=True):
    if precision == "bf16":   # inside a CUDA graph capture autocast's weight cache must be off
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, cache_enabled=cache_enabled)
    return nullcontext()


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def make_adam(params, lr, device, capturable=False):
    """Adam with the fused kernel where this torch has one for the device (one pass over the weights per
    step).

    capturable=True keeps the step count on the device, so that the step can be captured in a CUDA graph."""
    params = list(params)
    extra = {"capturable": True} if capturable else {}
    try:
        return torch.optim.Adam(params, lr=lr, fused=True, **extra)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, foreach=True, **extra)


def graphed_step(model, optimizer, loss_of_batch, batch_size, device, precision, warmup=3):
    """Capture one training step (forward, backward, Adam step) of a full batch as a CUDA graph.

    Returns step(idx) -> loss: idx is copied into the graph's static index buffer and the graph is replayed,
    so the batch is gathered from device-resident tensors inside the graph; the returned loss is the graph's
    static output (read it before the next replay). The optimizer must be capturable
    (make_adam(capturable=True)). Capture needs warm-up steps on a side stream; the weights and optimizer
    state they change are restored in place afterwards (the graph holds their addresses), so training starts
    from the same state as eager."""
    if torch.device(device).type != "cuda":
        raise UserError("CUDA graphs need a CUDA device; use --cuda-graphs off (or auto) on this device")
    static_idx = torch.zeros(batch_size, dtype=torch.long, device=device)
    params = list(model.parameters())
    saved_params = [p.detach().clone() for p in params]
    saved_state = {p: {k: v.clone() for k, v in optimizer.state[p].items() if torch.is_tensor(v)}
                   for p in params if p in optimizer.state}

    def run():
        with autocast(device, precision, cache_enabled=False):
            loss = loss_of_batch(model, static_idx)
        loss.backward()
        optimizer.step()
        return loss

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            optimizer.zero_grad(set_to_none=True)
            run()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss = run()
    with torch.no_grad():   # undo the warm-up and capture steps, in place
        for p, p0 in zip(params, saved_params):
            p.copy_(p0)
        for p in params:
            for k, v in optimizer.state[p].items():
                if torch.is_tensor(v):
                    # fresh Adam state is zeros
                    v.copy_(saved_state[p][k]) if p in saved_state else v.zero_()

    def step(idx):
        static_idx.copy_(idx)
        graph.replay()
        return static_loss
    return step


# relative; eager vs graphed loss of one step from the same weights (bench/cuda_graphs_check.py)
GRAPH_TOLERANCE = 1e-3


def _training_state(model, optimizer):
    """Copies of the weights, the optimizer state and the RNG states, to put back in place (graphs hold
    addresses)."""
    params = list(model.parameters())
    return {"params": [p.detach().clone() for p in params],
            "opt": {p: {k: v.clone() for k, v in optimizer.state[p].items() if torch.is_tensor(v)}
                    for p in params if p in optimizer.state},
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _restore_training_state(model, optimizer, saved, drop_new_state=False):
    """In place. drop_new_state: forget optimizer state made since the copy (an abandoned capture), else zero
    it (a live graph holds its addresses; zeroed Adam state acts as fresh state)."""
    with torch.no_grad():
        for p, p0 in zip(model.parameters(), saved["params"]):
            p.copy_(p0)
        for p in model.parameters():
            if p not in saved["opt"] and drop_new_state:
                optimizer.state.pop(p, None)
                continue
            for k, v in optimizer.state.get(p, {}).items():
                if torch.is_tensor(v):
                    v.copy_(saved["opt"][p][k]) if p in saved["opt"] else v.zero_()
    torch.set_rng_state(saved["rng"])
    if saved["cuda_rng"] is not None:
        torch.cuda.set_rng_state_all(saved["cuda_rng"])


def guarded_graphed_step(model, optimizer, loss_of_batch, batch_size, device, precision):
    """--cuda-graphs auto: a graphed_step() that can never do worse than eager.

    Returns (step or None, why it fell back or None). Capture runs inside a guard; after it, one step is
    replayed from the captured state and its loss compared with an eager forward pass from the same weights on
    the same batch (no dropout in the models that use graphs). Any capture error or a relative difference
    above GRAPH_TOLERANCE gives (None, reason), with the weights, optimizer state and RNG put back as they
    were, so the run continues eagerly exactly as if graphs had been off."""
    saved = _training_state(model, optimizer)
    try:
        step = graphed_step(model, optimizer, loss_of_batch, batch_size, device, precision)
        probe = _training_state(model, optimizer)
        idx = torch.arange(batch_size, device=device)
        with torch.no_grad(), autocast(device, precision):
            eager = float(loss_of_batch(model, idx).float())
        graphed = float(step(idx).float())
        _restore_training_state(model, optimizer, probe)
        if not abs(graphed - eager) <= GRAPH_TOLERANCE * max(abs(eager), 1e-12):
            raise RuntimeError(f"first-step loss {graphed:.6g} with the graph vs {eager:.6g} eager")
        return step, None
    except Exception as e:   # noqa: BLE001 - any failure of the optional fast path means: run eagerly
        _restore_training_state(model, optimizer, saved, drop_new_state=True)
        optimizer.zero_grad(set_to_none=True)
        return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def train_epoch(model, optimizer, loss_of_batch, n, batch_size, generator, device, precision, graphed=None):
    """One pass over n training items in a seeded random order. loss_of_batch(model, idx) -> mean loss.

    graphed: a graphed_step() for full batches (the last, smaller batch runs eagerly).
    The running loss stays on the device; there is one host sync per epoch, not one per step."""
    model.train()
    order = torch.randperm(n, generator=generator).to(device)
    total = torch.zeros((), device=device)
    # A step bar only when stderr is a terminal (tqdm's disable=None): never in logs or CI output.
    for start in tqdm(range(0, n, batch_size), desc="steps", unit="batch", leave=False, disable=None):
        idx = order[start:start + batch_size]
        if graphed is not None and len(idx) == batch_size:
            total += graphed(idx).detach().float() * len(idx)
            continue
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


def early_stopped(history, best_epoch, patience):
    """Early stopping's rule: patience epochs after the best one without a better validation metric (also on
    the last epoch of the budget). fit() stops on it; a search reads it back from a trial's saved history."""
    return bool(patience) and history[-1]["epoch"] - best_epoch >= patience


def convergence(result):
    """Best epoch of a fit() result, and whether the run converged: it stopped early, or its best epoch came
    before its last (a run whose best epoch is its last may still have been improving)."""
    best, n = result["best"]["epoch"], len(result["history"])
    return {"best_epoch": best, "converged": bool(result["stopped_early"]) or best < n}


def fit(model, optimizer, loss_of_batch, n_train, evaluate, cfg, device, *, ckpt_path=None, resume=False,
        on_epoch=None, ckpt_every=1):
    """Train for cfg.epochs, evaluating after each epoch; keep the best state by cfg.select (validation).

    evaluate(model) -> dict of floats, called under inference_mode in eval mode.
    on_epoch(result) is called after every epoch with the same dict fit() returns, so the caller can
    print and write partial metrics. A checkpoint is written every ckpt_every epochs and at the end.
    Returns {"history", "best", "best_state", "stopped_early", "stopped_at_deadline", "interrupted",
    "epochs_trained"}, where epochs_trained counts the epochs this call ran (0 when --resume met a finished
    checkpoint) and interrupted says that SIGTERM (stop_on_sigterm) stopped the run before cfg.epochs."""
    generator = torch.Generator().manual_seed(cfg.seed)
    history, best, best_state, start = [], {"epoch": 0, cfg.select: float("-inf")}, None, 1
    stopped_early = False
    if resume and ckpt_path and Path(ckpt_path).is_file():
        ck = load_torch(ckpt_path, "run without --resume (and with --force if a finished metrics.json is "
                        "there) to start this run over, or delete the file", map_location=device,
                        weights_only=False)
        try:
            model.load_state_dict(ck["model"])
        except RuntimeError:
            raise UserError(f"--resume: {ckpt_path} holds a model of another configuration than this run's; "
                            f"run with the options it was started with, or without --resume to start "
                            f"afresh") from None
        optimizer.load_state_dict(ck["optimizer"])
        _set_rng_state(ck["rng"], generator)
        history, best, best_state, start = ck["history"], ck["best"], ck["best_state"], ck["epoch"] + 1
        if ck["epoch"] > cfg.epochs:
            raise UserError(f"--resume: {ckpt_path} already ran {ck['epoch']} epochs, more than --epochs "
                            f"{cfg.epochs}; pass --epochs {ck['epoch']} or more, or run without --resume to "
                            f"start afresh")
        if ck.get("stopped_early"):   # a finished run: nothing to train, and it stays early-stopped
            start, stopped_early = cfg.epochs + 1, True
    elif resume and ckpt_path:
        raise UserError(f"--resume: no checkpoint at {ckpt_path}; run without --resume to start this run")
    stopped_at_deadline = interrupted = False
    trained = 0
    graphed = graph_fallback = None
    # after a resume: capture with the restored weights and state
    if cfg.cuda_graphs == "on" and start <= cfg.epochs:
        graphed = graphed_step(model, optimizer, loss_of_batch, cfg.batch_size, device, cfg.precision)
    elif cfg.cuda_graphs == "auto" and start <= cfg.epochs:
        graphed, graph_fallback = guarded_graphed_step(model, optimizer, loss_of_batch, cfg.batch_size,
                                                       device, cfg.precision)
        if graph_fallback:
            print(f"cuda graphs: falling back to eager ({graph_fallback}); --cuda-graphs off skips the "
                  f"attempt", file=sys.stderr, flush=True)
    for epoch in range(start, cfg.epochs + 1):
        sync(device)
        t0 = time.perf_counter()
        train_loss = train_epoch(model, optimizer, loss_of_batch, n_train, cfg.batch_size, generator,
                                 device, cfg.precision, graphed)
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
        trained += 1
        if metrics[cfg.select] > best[cfg.select]:
            best = {"epoch": epoch, cfg.select: metrics[cfg.select]}
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        stopped_early = early_stopped(history, best["epoch"], cfg.patience)
        stopped_at_deadline = (bool(cfg.stop_at) and time.time() > cfg.stop_at and epoch < cfg.epochs
                               and not stopped_early)
        interrupted = STOP.is_set() and epoch < cfg.epochs and not stopped_early
        if ckpt_path and (epoch % ckpt_every == 0 or epoch == cfg.epochs or stopped_early
                          or stopped_at_deadline or interrupted):
            save_torch(ckpt_path, {"epoch": epoch, "model": model.state_dict(),
                                   "optimizer": optimizer.state_dict(), "rng": _rng_state(generator),
                                   "history": history, "best": best, "best_state": best_state,
                                   "stopped_early": stopped_early})
        result = {"history": history, "best": best, "best_state": best_state, "stopped_early": stopped_early,
                  "epochs_trained": trained, "cuda_graphs_used": graphed is not None,
                  "cuda_graphs_fallback": graph_fallback}
        if on_epoch:
            on_epoch(result)
        if stopped_early or stopped_at_deadline or interrupted:
            break
    return {"history": history, "best": best, "best_state": best_state, "stopped_early": stopped_early,
            "stopped_at_deadline": stopped_at_deadline, "interrupted": interrupted, "epochs_trained": trained,
            "cuda_graphs_used": graphed is not None, "cuda_graphs_fallback": graph_fallback}

