"""Q2.1's hyperparameter search of one RNA model: the search spaces, the Optuna study and its objective, local
worker processes, and the hand-over of interrupted or crashed trials. Storage plumbing:
common/runfiles/search.py."""
import multiprocessing as mp
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
import torch
from optuna.study import MaxTrialsCallback

from common.rna.fit import load_q2, test_report, train_rna
from common.rna.models import HOMEWORK_DEFAULT_HP, PATIENCE
from common.runfiles.files import UserError, load_torch, save_torch
from common.runfiles.flags import positive_int
from common.runfiles.lifecycle import RunFiles, run_once
from common.runfiles.records import finished_record, metrics_record
from common.runfiles.search import (
    FINISHED,
    fail_and_retry_orphans,
    finished,
    is_url,
    make_storage,
    quiet,
    redact,
    split_trials,
    stored_trials,
    worker_device,
    worker_threads,
)
from common.training.device import resolve_precision, seed_everything
from common.training.loop import STOP, FitConfig, epoch_printer


@dataclass(frozen=True)
class SearchSpec:
    """One search of one model: what its trials and workers share."""
    model: str                  # cnn | lstm
    protein: str
    seed: int                   # TPE sampler and every trial's training
    trials: int                 # finished (complete or pruned) trials to reach, counting resumed ones
    epochs: int
    patience: int
    precision: str
    default_lr: float           # trial 0 is the homework default, with this lr and batch size
    default_batch_size: int
    runs: str                   # trial weights and checkpoints, and the default journal storage
    storage: str | None = None  # a journal file path or a database URL (None: <runs>/optuna.journal)
    workers: int = 1
    threads: int | None = None
    data_dir: str | None = None  # for the worker processes, which load the data themselves
    quick: bool = False
    fresh: bool = True          # delete the study first (a new search: not --resume, not --search-only)


@dataclass(frozen=True)
class Q21Config:
    """The protocol values of a Q2.1 record: what it stores as "config" (run options, such as the storage and
    the workers, are stored apart)."""
    model: str              # cnn | lstm
    protein: str
    seed: int
    epochs: int             # at most (early stopping with patience)
    patience: int
    precision: str
    hp: dict
    lr: float
    batch_size: int
    quick: bool
    configuration: str      # search selection | homework default
    # the search: trials, best trial, sampler, pruner, study, storage kind
    search: dict | None = None
    selected_from: str | None = None     # a retrained selection: the search record it came from
    selected_data_checksum: str | None = None


def precision_of(flag, device, name):
    # measured, common/training/device.py
    return resolve_precision(flag, device, cpu_bf16_pays=(name != "cnn"))


def add_search_args(p):
    """The search's flags, as one argparse group."""
    g = p.add_argument_group("search")
    g.add_argument("--trials", type=positive_int, default=None,
                   help="Optuna trials per model, counting resumed ones (default 20; 1 with --quick)")
    g.add_argument("--patience", type=positive_int, default=PATIENCE,
                   help="early stopping: epochs without a better val Spearman")
    g.add_argument("--storage", default=None,
                   help="Optuna storage shared by workers: a journal file path (one machine, or a shared "
                        "filesystem) or a postgresql:// (mysql://, sqlite:///) URL for several machines "
                        "(default: a journal file under runs/)")
    g.add_argument("--workers", type=positive_int, default=1,
                   help="local worker processes on the same study, CPU threads split between them "
                        "(one GPU each when there are several)")
    g.add_argument("--search-only", action="store_true",
                   help="join the study in --storage, run trials until it has --trials finished ones, and "
                        "exit without selecting or testing (for helper machines; never deletes the study)")
    return g


def suggest(trial, name):
    """Model hyperparameters, lr and batch size for one trial (the search spaces in q2_1_cnn_lstm.py's
    docstring)."""
    if name == "cnn":
        hp = {"kernel": trial.suggest_int("kernel", 6, 16),
              "filters": trial.suggest_int("filters", 16, 128, log=True),
              "hidden": trial.suggest_categorical("hidden", [32, 64]),
              "dropout": trial.suggest_float("dropout", 0.0, 0.5)}
    else:
        hp = {"hidden": trial.suggest_int("hidden", 32, 128, log=True),
              "layers": trial.suggest_int("layers", 1, 2),
              "dropout": trial.suggest_float("dropout", 0.0, 0.5), "mlp_hidden": 64}
    return (hp, trial.suggest_float("lr", 1e-4, 3e-3, log=True),
            trial.suggest_categorical("batch_size", [64, 128, 256, 512]))


def name_of_study(spec, checksum):
    return f"{spec.model}-{spec.protein}-{checksum[:8]}-seed{spec.seed}-ep{spec.epochs}"


def kept_without_study(spec, metrics_path, checksum):
    """--resume, a finished search record, its study not in the storage (a fresh clone has no journal): the
    record, kept (a new search would replace it); else None. A finished record of other data is refused."""
    rec = finished_record(metrics_path)
    if rec is None:
        return None
    if rec.get("data", {}).get("checksum") != checksum:
        raise UserError(f"{metrics_path} holds a finished search on other data (md5 "
                        f"{rec.get('data', {}).get('checksum')}); pass --force to replace it, or --out-dir")
    storage = spec.storage or Path(spec.runs) / "optuna.journal"
    if stored_trials(storage, name_of_study(spec, checksum)):
        return None
    print(f"{spec.model}: the search finished earlier, its metrics are kept ({metrics_path}); its trials are "
          f"not in {redact(storage)}, so --resume runs none (--force reruns the search)", flush=True)
    return rec


def study_of(spec, checksum, worker=0, fresh=False):
    """This search's Optuna study in its storage (default <runs>/optuna.journal); fresh deletes it first."""
    storage = make_storage(spec.storage or Path(spec.runs) / "optuna.journal")
    study_name = name_of_study(spec, checksum)
    if fresh:
        try:
            optuna.delete_study(study_name=study_name, storage=storage)
        except KeyError:
            pass
    study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize",
                                load_if_exists=True,
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=4))
    # TPE seeded per worker and per number of trials already there: concurrent workers, and a resumed search,
    # do not replay the same random draws (a fresh single-worker search is seeded by the seed alone, as
    # before).
    study.sampler = optuna.samplers.TPESampler(seed=spec.seed + 1000 * worker + len(study.trials))
    return study


def trial_checkpoint(runs, trial):
    """This trial's per-epoch checkpoint (runs/trial<N>.ckpt). A retry of a trial that SIGTERM or a crash
    stopped takes over the checkpoint of the trial it retries, so it continues from that epoch instead of
    epoch 1 (the checkpoint holds weights, Adam state and RNG state: the same history as an uninterrupted
    trial)."""
    path = runs / f"trial{trial.number}.ckpt"
    src = trial.user_attrs.get("retry_of")
    if src is not None and (runs / f"trial{src}.ckpt").is_file() and not path.is_file():
        (runs / f"trial{src}.ckpt").rename(path)
    return path


def make_objective(spec, data, device, worker=0):
    runs, name, epochs = Path(spec.runs), spec.model, spec.epochs

    def objective(trial):
        hp, lr, batch_size = suggest(trial, name)
        cfg = FitConfig(epochs=epochs, batch_size=batch_size, seed=spec.seed, select="val_spearman",
                        patience=spec.patience, precision=spec.precision)
        trial.set_user_attr("worker", worker)
        ckpt = trial_checkpoint(runs, trial)
        resume = ckpt.is_file()
        reported = set()

        def on_epoch(result):
            r = result["history"][-1]
            print(f"{name} trial {trial.number:2d} (worker {worker}) epoch {r['epoch']:2d}/{epochs} "
                  f"loss {r['train_loss']:.4f} val_loss {r['val_loss']:.4f} val_spearman "
                  f"{r['val_spearman']:.4f} {r['seconds']:.1f}s", flush=True)
            # after a resume, also the epochs the checkpoint brought (for the pruner)
            for h in result["history"]:
                if h["epoch"] not in reported:
                    trial.report(h["val_spearman"], h["epoch"])
                    reported.add(h["epoch"])
            if trial.should_prune():
                ckpt.unlink(missing_ok=True)
                raise optuna.TrialPruned()

        seed_everything(spec.seed)
        if resume:
            print(f"{name} trial {trial.number}: continuing trial {trial.user_attrs.get('retry_of')} from "
                  f"its checkpoint {ckpt}", flush=True)
        _, result = train_rna(name, hp, lr, data, cfg, device, on_epoch=on_epoch, ckpt=ckpt, resume=resume)
        if resume:
            trial.set_user_attr("resumed_after_epoch", len(result["history"]) - result["epochs_trained"])
        if result["interrupted"]:   # --resume reruns it with the same parameters, from its checkpoint
            trial.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            trial.set_user_attr("interrupted_after_epoch", len(result["history"]))
            trial.study.stop()
            # Optuna marks the trial FAIL (one warning line, no traceback); run_trials then exits
            return float("nan")
        save_torch(runs / f"trial{trial.number}.pt", {"hp": hp, "lr": lr, "batch_size": batch_size,
                                                      "state": result["best_state"],
                                                      "history": result["history"]})
        ckpt.unlink(missing_ok=True)
        trial.set_user_attr("best_epoch", result["best"]["epoch"])
        trial.set_user_attr("epochs_run", len(result["history"]))
        return result["best"]["val_spearman"]
    return objective


def search_worker(spec, worker, n_trials, device):
    """A local worker process: its share of the trials on the shared study, then exit."""
    torch.set_num_threads(spec.threads or worker_threads(spec.workers))
    device = worker_device(worker, device)
    quiet()
    data, record = load_q2(spec.data_dir, [spec.protein], device, spec.quick)
    study = study_of(spec, record["checksum"], worker=worker)
    study.optimize(make_objective(spec, data, device, worker), n_trials=n_trials)


def run_trials(spec, data, record, device):
    """Bring the study to spec.trials finished (complete or pruned) trials: local workers first, then this
    process itself runs whatever is still missing (trials of a crashed worker, retried). On SIGTERM: one line,
    exit 143."""
    name = spec.model
    study = study_of(spec, record["checksum"], fresh=spec.fresh)
    if not study.trials:
        study.enqueue_trial({**HOMEWORK_DEFAULT_HP[name], "lr": spec.default_lr,
                             "batch_size": spec.default_batch_size}, skip_if_exists=True)
    need = max(0, spec.trials - finished(study))
    if spec.workers > 1 and need:
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=search_worker, args=(spec, w, k, device))
                 for w, k in enumerate(split_trials(need, spec.workers)) if k]
        print(f"{name}: {need} trials over {len(procs)} worker processes, "
              f"{spec.threads or worker_threads(spec.workers)} threads each", flush=True)
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
        crashed = [w for w, proc in enumerate(procs) if proc.exitcode != 0]
        if crashed and not is_url(spec.storage or ""):
            print(f"{name}: workers {crashed} exited with an error; their running trials "
                  f"{fail_and_retry_orphans(study)} are marked FAIL and retried")
    need = max(0, spec.trials - finished(study))
    if need:
        study.optimize(make_objective(spec, data, device), n_trials=need,
                       callbacks=[MaxTrialsCallback(spec.trials, states=FINISHED)])
    # SIGTERM stopped a trial at an epoch end: it is marked FAIL and enqueued again for --resume
    if STOP.is_set():
        print(f"interrupted: {name} search stopped by SIGTERM at an epoch end; the running trial is marked "
              f"FAIL and queued again with its parameters and checkpoint: continue with the same command and "
              f"--resume", file=sys.stderr, flush=True)
        raise SystemExit(143)
    return study


def search_info(study, spec):
    """What a search record's config says of its search."""
    failed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
    return {"trials": finished(study), "best_trial": study.best_trial.number,
            "failed_and_retried": len(failed), "sampler": "TPE", "pruner": "median",
            "study": study.study_name}   # storage (redacted), workers: in "options"


def trial_seconds(study):
    """Wall seconds of every trial of the study that ran to an end (complete, pruned or failed), summed: the
    search's cost across all the calls and sessions that --resume joined (search_seconds counts only the last
    call)."""
    return float(sum((t.datetime_complete - t.datetime_start).total_seconds() for t in study.trials
                     if t.datetime_start and t.datetime_complete))


def best_trial_weights(spec, best, data, device):
    """The selected trial's saved weights; if another machine ran it (its file is not in this run folder),
    retrain its configuration here with the same seed."""
    runs = Path(spec.runs)
    path = runs / f"trial{best.number}.pt"
    if path.is_file():
        return load_torch(path, f"delete it and rerun with --resume (trial {best.number} is retrained), or "
                          f"rerun the search with --force", weights_only=False)
    print(f"{spec.model}: trial {best.number}'s weights are not in {runs} (another machine ran it); "
          f"retraining its configuration")
    hp, lr, batch_size = suggest(optuna.trial.FixedTrial(best.params), spec.model)
    cfg = FitConfig(epochs=spec.epochs, batch_size=batch_size, seed=spec.seed, select="val_spearman",
                    patience=spec.patience, precision=spec.precision)
    seed_everything(spec.seed)
    _, result = train_rna(spec.model, hp, lr, data, cfg, device)
    if result["interrupted"]:   # SIGTERM during the retrain: no truncated weights file, no record
        print(f"interrupted: retraining trial {best.number} stopped by SIGTERM; rerun with --resume",
              file=sys.stderr, flush=True)
        raise SystemExit(143)
    saved = {"hp": hp, "lr": lr, "batch_size": batch_size, "state": result["best_state"],
             "history": result["history"]}
    save_torch(path, saved)
    return saved


def kept_search(finished_rec, trials, best_trial, history):
    """finished_rec (the finished search record on disk, or None) if it already describes this study (same
    number of finished trials, same best trial and history), else None: a --resume that ran no new trial keeps
    the file as it was instead of rewriting it with new timestamps."""
    if finished_rec is None:
        return None
    search = finished_rec.get("config", {}).get("search", {})
    same = (search.get("trials"), search.get("best_trial")) == (trials, best_trial)
    return finished_rec if same and finished_rec.get("history") == history else None


def retrain_seed(config, seed, ctx, params, variant):
    """One seed of a Q2.1 configuration (its Q21Config) through the shared run lifecycle ->
    <variant>/seed<k>/metrics.json (its record, new or kept; None at a deadline)."""
    name, opts, data = config.model, ctx.opts, ctx.data
    files = RunFiles.under(opts.out_dir, opts.run_dir, ctx.experiment, variant, f"seed{seed}")
    cfg = FitConfig(epochs=config.epochs, batch_size=config.batch_size, seed=seed,
                    select="val_spearman", patience=config.patience, precision=config.precision)
    printer = epoch_printer(f"{variant} seed {seed}", cfg.epochs, ("train_loss", "val_loss", "val_spearman"))
    state = {}

    def train(from_checkpoint):
        seed_everything(seed)
        state["t0"] = time.time()
        state["model"], res = train_rna(name, config.hp, config.lr, data, cfg, ctx.device,
                                        ckpt=files.checkpoint, resume=from_checkpoint, on_epoch=printer)
        return res

    def record_of(res, finished):
        extra = {"test": test_report(state["model"], res["best_state"], data["test"]),
                 "noise_ceiling": ctx.data_record.get("noise_ceiling")} if finished else {}
        return metrics_record(ctx.experiment, variant, config=replace(config, seed=seed),
                              options=ctx.options, data=ctx.data_record, device=ctx.device, seed=seed,
                              params=params, result=res, started=state["t0"], extra=extra)

    rec = run_once(files, resume=opts.resume, force=opts.force, train=train, record=record_of,
                   label=f"{variant} seed {seed}")
    if rec is not None and "t0" in state:
        print(f"{variant} seed {seed}: val Spearman {rec['best']['val_spearman']:.4f} (epoch "
              f"{rec['best']['epoch']}), test Spearman {rec['test']['spearman']:.4f}, "
              f"{rec['seconds_per_epoch_median']:.1f} s/epoch", flush=True)
    return rec
