"""A run's life, written once for every script: lock its folders; keep or refuse a finished run; train (from
its checkpoint under --resume); end as interrupted, stopped at a deadline, or complete; write the record
atomically."""
from dataclasses import dataclass
from pathlib import Path

from common.runfiles.files import UserError, write_json
from common.runfiles.records import finished_record, kept_record, lock_run, write_interrupted


@dataclass(frozen=True)
class RunContext:
    """What every run of one script call shares: the experiment, the data on the device and its record, the
    device, and the run options (common.runfiles.flags.RunOptions) with `options`, the dict that records store
    of them."""
    experiment: str
    data: dict
    data_record: dict
    device: str
    opts: object
    options: dict


@dataclass(frozen=True)
class RunFiles:
    """Where one run's record and checkpoint go."""
    metrics: Path      # e.g. figures/<experiment>/<variant>/seed<k>/metrics.json
    checkpoint: Path   # e.g. runs/<experiment>/<variant>/seed<k>/checkpoint.pt

    @classmethod
    def under(cls, out_dir, run_dir, *parts):
        rel = Path(*map(str, parts))
        return cls(Path(out_dir) / rel / "metrics.json", Path(run_dir) / rel / "checkpoint.pt")


def run_once(files, *, resume, force, train, record, label):
    """One run, ended the same way in every script. Returns its finished record, or None (stopped at a
    deadline).

    train(from_checkpoint) -> fit()'s result dict; from_checkpoint is True under --resume when a checkpoint
    exists. record(result, finished) -> the metrics dict: finished=False for an interrupted run (no test
    numbers), True for a finished one (the caller tests its selected weights there). The status is set here.
    - A finished record, without --force: refused in one line, unless --resume. Under --resume it is continued
      from its checkpoint (to a larger --epochs), or kept as it is when the checkpoint holds no more to do, or
      is gone (a fresh clone: it is never retrained over). --force trains it again and replaces it.
    - SIGTERM (fit's interrupted): the record is written with status 'interrupted', then SystemExit(143).
    - Ctrl-C: one line, SystemExit(130); the last finished epoch is in the checkpoint.
    - A deadline (fit's stopped_at_deadline): one line, None; --resume continues it."""
    # a second process on this run refuses at once
    with lock_run(files.metrics.parent, files.checkpoint.parent):
        kept = None if force else finished_record(files.metrics)
        if kept is not None:
            if not resume:
                raise UserError(f"{files.metrics} already holds a finished run; pass --force to replace it, "
                                f"--resume to keep it (or extend it to more --epochs), "
                                f"or --out-dir to write elsewhere")
            # nothing to continue from (a fresh clone): never retrain over it
            if not files.checkpoint.is_file():
                print(f"{label}: finished earlier ({kept.get('epochs_run', '?')} epochs); "
                      f"its metrics are kept", flush=True)
                return kept
        try:
            result = train(resume and files.checkpoint.is_file())
        except KeyboardInterrupt:
            print(f"\n{label}: interrupted; the last finished epoch is saved: rerun with --resume to "
                  f"continue ({files.checkpoint})")
            raise SystemExit(130) from None
        if result.get("interrupted"):
            write_interrupted(files.metrics, record(result, False), files.checkpoint)
            raise SystemExit(143)
        if result.get("stopped_at_deadline"):
            print(f"{label}: stopped at the deadline after epoch {len(result['history'])}; rerun with "
                  f"--resume to continue ({files.checkpoint})", flush=True)
            return None
        # the checkpoint held the finished run: nothing trained
        same = kept_record(files.metrics, result)   # also under --force --resume, where kept is None
        if same is not None:
            print(f"{label}: finished earlier ({len(result['history'])} epochs); its metrics are kept",
                  flush=True)
            return same
        rec = {**record(result, True), "status": "complete"}
        write_json(files.metrics, rec)
        return rec
