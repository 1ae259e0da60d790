"""Run bookkeeping shared by the scripts: where a run's files go, its metrics record, seed aggregates."""
import time
from contextlib import ExitStack
from dataclasses import asdict, is_dataclass
from pathlib import Path

import numpy as np

from common.runfiles.files import UserError, read_json, timestamp, write_json
from common.runfiles.locks import RunLock
from common.runfiles.provenance import code_version, environment


def experiment_name(base, quick):
    """Quick runs get their own folder so they never overwrite a real run."""
    return f"{base}_quick" if quick else base


def run_dirs(out_dir, run_dir, experiment, variant, seed, multi_seed):
    """(metrics folder, checkpoint path).
    One seed: <out>/<exp>/<variant>/; several: .../<variant>/seed<k>/."""
    rel = Path(experiment) / variant / (f"seed{seed}" if multi_seed else "")
    return Path(out_dir) / rel, Path(run_dir) / rel / "checkpoint.pt"


def lock_run(*folders):
    """Hold the lock of each folder of one run (its metrics folder and its checkpoint folder) for a
    with-block: a second process on the same run refuses at once, naming the folder and the process that
    holds it."""
    stack = ExitStack()
    try:
        for folder in dict.fromkeys(str(f) for f in folders):   # each once, in order
            stack.enter_context(RunLock(folder))
    except BaseException:
        stack.close()
        raise
    return stack


def write_interrupted(path, rec, ckpt):
    """metrics.json of a run that SIGTERM stopped: status 'interrupted'; the caller exits 143."""
    rec["status"] = "interrupted"
    write_json(path, rec)
    print(f"{rec['experiment']} {rec['variant']} seed {rec['seed']}: interrupted (SIGTERM) after epoch "
          f"{rec['epochs_run']}; checkpoint {ckpt}; continue with the same command and --resume", flush=True)


def finished_record(metrics_path):
    """The record at metrics_path if it holds a finished run, else None
    (missing, unreadable, not JSON, not finished)."""
    try:
        rec = read_json(metrics_path)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("status") == "complete" else None


def stands_for_cap(rec, epochs):
    """Whether a finished record, trained with at most rec["config"]["epochs"] epochs, is what a run with at
    most `epochs` gives: the same cap, or it stopped early (patience) within both caps, which then never
    bound it. The epoch cap ends the loop and enters nothing else (common/training/loop.py fit); training must
    also be deterministic, which bench/q2_3_cap_queue.sh checks before it carries records over."""
    cap = rec["config"]["epochs"]
    return cap == epochs or bool(rec.get("stopped_early")) and rec["epochs_run"] <= min(cap, epochs)


def guard_finished(metrics_path, *, force, resume):
    """Refuse to overwrite a finished, non-quick run unless --force or --resume."""
    path = Path(metrics_path)
    if force or resume:
        return
    if finished_record(path) is not None:   # an unreadable file holds no good result to protect
        raise UserError(f"{path} already holds a finished run; pass --force to replace it, "
                        f"--resume to continue it, or --out-dir to write elsewhere")


def kept_record(metrics_path, result):
    """The finished record at metrics_path when fit() trained nothing (--resume met a finished checkpoint),
    else None.

    A finished seed met again by --resume keeps its file as it was (its timings and start time), instead of
    being rewritten with the seconds of a re-test. Kept only if the record matches the checkpoint's history
    and selection."""
    rec = None if result.get("epochs_trained", 1) else finished_record(metrics_path)
    same = (rec is not None and rec.get("epochs_run") == len(result["history"])
            and rec.get("best") == result["best"])
    return rec if same else None


def metrics_record(experiment, variant, *, config, options, data, device, seed, params, result, started,
                   extra=None):
    """The metrics.json dict: the protocol (config: the script's frozen config, or a dict), the run options
    apart (options: RunOptions.record()), data provenance, environment, per-epoch history and selection."""
    history = result["history"]
    rec = {
        "experiment": experiment, "variant": variant, "status": "running",
        "config": asdict(config) if is_dataclass(config) else dict(config), "options": dict(options),
        "data": data, **environment(device), "seed": seed, "params": params,
        "epochs_run": len(history),
        "train_seconds": float(sum(h["seconds"] for h in history)),
        "seconds_per_epoch_median": float(np.median([h["seconds"] for h in history])) if history else None,
        "wall_seconds": time.time() - started,   # of this call; see resumed_after_epoch
        "history": history, "best": result["best"], "stopped_early": result.get("stopped_early", False),
    }
    rec["started"] = timestamp(started)   # this call's start
    resumed = len(history) - result.get("epochs_trained", len(history))
    if resumed > 0:   # continued from a checkpoint: wall_seconds covers only the epochs after this one
        rec["resumed_after_epoch"] = resumed
    rec.update(extra or {})
    return rec


def record_note(record):
    """A record's --note: under "options" since 2026-12-02, in "config" before."""
    return (record.get("options") or record.get("config") or {}).get("note") or ""


def _dotted(record, key):
    """record["a"]["b"] for key "a.b" as a float, or None where the record lacks it."""
    v = record
    for part in key.split("."):
        if not isinstance(v, dict) or part not in v:
            return None
        v = v[part]
    return float(v)


def aggregate(records, keys):
    """Mean, sample std (ddof=1; 0 for a single run) and n of dotted keys across per-seed metrics records.

    A key some records lack (a metric added after they ran) is aggregated over the records that have it;
    its own n says how many."""
    out = {}
    for key in keys:
        values = [v for v in (_dotted(r, key) for r in records) if v is not None]
        if not values:   # a metric that no run recorded (e.g. test.auc before it existed)
            continue
        arr = np.asarray(values)
        out[key] = {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
                    "n": len(arr), "values": values}
    return out


def write_aggregate(variant_dir, keys):
    """Aggregate every finished seed<k>/ run of a variant into <variant_dir>/aggregate.json.

    Reading the folder (not the runs of this process) lets seeds run in separate processes."""
    records = [r for r in load_runs(variant_dir) if r.get("status") == "complete"]
    if not records:
        return None
    r0 = records[0]
    out = {"experiment": r0["experiment"], "variant": r0["variant"], "seeds": [r["seed"] for r in records],
           "data": r0["data"], "device_name": r0["device_name"], "epochs": r0["config"]["epochs"],
           "metrics": aggregate(records, keys), "code": code_version()}
    write_json(Path(variant_dir) / "aggregate.json", out)
    return out


def seed_notes(records):
    """The runs' notes, each once with its seeds:
    "a" if every run has note a, else "seed 0: a; seeds 1, 2: b"."""
    by_note = {}
    for r in records:
        if record_note(r):
            by_note.setdefault(record_note(r), []).append(str(r["seed"]))
    if len(by_note) == 1 and len(next(iter(by_note.values()))) == len(records):
        return next(iter(by_note))
    return "; ".join(f"seed{'s' * (len(s) > 1)} {', '.join(s)}: {n}" for n, s in by_note.items())


def load_runs(variant_dir):
    """The metrics records of a variant: its seed<k>/ runs if it has them, else its single metrics.json."""
    variant_dir = Path(variant_dir)
    seeds = sorted(variant_dir.glob("seed*/metrics.json"), key=lambda p: int(p.parent.name[4:]))
    paths = seeds or ([variant_dir / "metrics.json"] if (variant_dir / "metrics.json").is_file() else [])
    return [read_json(p) for p in paths]
