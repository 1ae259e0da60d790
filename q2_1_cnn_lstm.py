"""Q2.1 — RBFOX1 binding from RNAcompete probes: a 1D CNN and a BiLSTM, each tuned by an Optuna search.

Protocol: one-hot probes padded to 41 nt with a validity mask, masked MSE loss, Spearman correlation as
the metric; SetA split 80/20 (RandomState 42) into train/validation, SetB is test. Hyperparameters and
checkpoints (epoch) are selected on validation Spearman only; the test set is evaluated once, for the
best trial's best epoch. The first trial of each search is the homework's default configuration.

Search spaces (TPE sampler seeded by --seed, median pruner, early stopping with --patience):
    cnn : kernel 6-16, filters 16-128 (log), MLP hidden {32, 64}, dropout 0-0.5, lr 1e-4-3e-3 (log),
          batch size {64, 128, 256, 512}; 25 epochs at most (the homework report's budget)
    lstm: hidden 32-128 (log), layers 1-2, dropout 0-0.5, lr 1e-4-3e-3 (log), batch size {64, ..., 512};
          50 epochs at most

Reproduce:
    python q2_1_cnn_lstm.py                           # course files in data/rnacompete, else the simulator
    python q2_1_cnn_lstm.py --data-dir DIR --protein RBFOX1 --trials 20
    python q2_1_cnn_lstm.py --quick                   # smoke run: 1 trial, 1 epoch, 2,000 probes
    python q2_1_cnn_lstm.py --resume                  # continue an interrupted search (journal study in runs/)
    python q2_1_cnn_lstm.py --workers 4               # 4 local processes on one study (threads split, a GPU each)
    python q2_1_cnn_lstm.py --storage postgresql://user@host/db --resume   # same command on every machine: one study
    python q2_1_cnn_lstm.py --seeds 0 1 2             # after the search, retrain the selected config per seed
    python q2_1_cnn_lstm.py --retrain-selected --seeds 0 1 2   # no search: retrain the committed selection per seed
    python q2_1_cnn_lstm.py --retrain-default --seeds 0 1 2    # the homework default per seed: tuned vs default, with a CI

Writes figures/q2_1/<model>/metrics.json and trials.csv (seed<k>/ for the retrained selection; <model>_default/seed<k>/
for the homework default), and figures/q2_1/{loss_curves,val_spearman,search_<model>}.png. On the calibrated simulated
set, expect test Spearman about 0.58 (default CNN) to 0.61-0.62 (tuned), below its sequence ceiling 0.646 (README).
"""
import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

import optuna
import torch
from optuna.study import MaxTrialsCallback

from common.reporting.plots_q2 import plot_q2_curves, plot_search
from common.rna.fit import load_q2, test_report, train_rna
from common.rna.models import HOMEWORK_DEFAULT_HP, build_rna_model
from common.runfiles.files import UserError, exit_on_user_error, load_torch, read_json, save_torch, source_name, write_json, write_text
from common.runfiles.flags import HelpFormatter, add_common_args, parse_flags, positive_int
from common.runfiles.lifecycle import RunFiles, run_once
from common.runfiles.records import experiment_name, finished_record, guard_finished, lock_run, metrics_record, write_aggregate
from common.runfiles.search import (
    FINISHED,
    fail_and_retry_orphans,
    finished,
    is_url,
    make_storage,
    quiet,
    redact,
    split_trials,
    worker_device,
    worker_threads,
)
from common.training.device import resolve_precision, seed_everything, setup_device
from common.training.loop import STOP, FitConfig, early_stopped, epoch_printer, stop_on_sigterm

EPOCHS = {"cnn": 25, "lstm": 50}


class SearchInterrupted(Exception):
    """SIGTERM stopped a trial at an epoch end; the trial is marked FAIL and enqueued again for --resume."""
DEFAULT_HP = HOMEWORK_DEFAULT_HP


def suggest(trial, name):
    """Model hyperparameters, lr and batch size for one trial (the search spaces in the docstring)."""
    if name == "cnn":
        hp = {"kernel": trial.suggest_int("kernel", 6, 16), "filters": trial.suggest_int("filters", 16, 128, log=True),
              "hidden": trial.suggest_categorical("hidden", [32, 64]), "dropout": trial.suggest_float("dropout", 0.0, 0.5)}
    else:
        hp = {"hidden": trial.suggest_int("hidden", 32, 128, log=True), "layers": trial.suggest_int("layers", 1, 2),
              "dropout": trial.suggest_float("dropout", 0.0, 0.5), "mlp_hidden": 64}
    return hp, trial.suggest_float("lr", 1e-4, 3e-3, log=True), trial.suggest_categorical("batch_size", [64, 128, 256, 512])


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--model", choices=["cnn", "lstm", "both"], default="both", help="which architecture(s) to tune")
    p.add_argument("--data-dir", default=None, help="folder with the course's norm_data.txt + metadata.xlsx "
                   "(default data/rnacompete, falling back to the simulated set)")
    p.add_argument("--protein", default="RBFOX1", help="protein name from metadata, or an RNAcompete id (RBFOX1 = RNCMPT00168)")
    p.add_argument("--trials", type=positive_int, default=20, help="Optuna trials per model (total, counting resumed ones)")
    p.add_argument("--patience", type=positive_int, default=5, help="early stopping: epochs without a better val Spearman")
    p.add_argument("--storage", default=None,
                   help="Optuna storage shared by workers: a journal file path (one machine, or a shared filesystem) or a "
                        "postgresql:// (mysql://, sqlite:///) URL for several machines (default: a journal file under runs/)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="local worker processes on the same study, CPU threads split between them (one GPU each "
                        "when there are several)")
    p.add_argument("--search-only", action="store_true",
                   help="join the study in --storage, run trials until it has --trials finished ones, and exit without "
                        "selecting or testing (for helper machines; never deletes the study)")
    p.add_argument("--retrain-selected", action="store_true",
                   help="skip the search: retrain the configuration recorded in figures/q2_1/<model>/metrics.json once "
                        "per --seeds seed (seed<k>/metrics.json + aggregate.json)")
    p.add_argument("--retrain-default", action="store_true",
                   help="skip the search: train the homework default configuration (trial 0 of every search; --lr and "
                        "--batch-size) once per --seeds seed, with the search's epochs and early stopping, into "
                        "figures/q2_1/<model>_default/seed<k>/: the baseline of the tuned-vs-default comparison")
    add_common_args(p, epochs=None, batch_size=64, lr=1e-3, quick_epochs=1)
    args = parse_flags(p, argv)
    if args.retrain_selected and args.retrain_default:
        p.error("--retrain-selected and --retrain-default are two separate runs; give one of them")
    for flag in ("retrain_selected", "retrain_default"):
        if getattr(args, flag) and not args.seeds:
            p.error(f"--{flag.replace('_', '-')} needs --seeds, e.g. --seeds 0 1 2")
    given = sys.argv[1:] if argv is None else argv
    if args.quick and "--trials" not in given:
        args.trials = 1
    return args


def study_of(args, name, record, epochs, runs, worker=0, fresh=False):
    """The Optuna study of this search in --storage (default: runs/.../optuna.journal); fresh deletes it first."""
    storage = make_storage(args.storage or runs / "optuna.journal")
    study_name = f"{name}-{args.protein}-{record['checksum'][:8]}-seed{args.seed}-ep{epochs}"
    if fresh:
        try:
            optuna.delete_study(study_name=study_name, storage=storage)
        except KeyError:
            pass
    study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize", load_if_exists=True,
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=4))
    # TPE seeded per worker and per number of trials already there: concurrent workers, and a resumed search,
    # do not replay the same random draws (a fresh single-worker search is seeded by --seed alone, as before).
    study.sampler = optuna.samplers.TPESampler(seed=args.seed + 1000 * worker + len(study.trials))
    return study


def trial_checkpoint(runs, trial):
    """This trial's per-epoch checkpoint (runs/trial<N>.ckpt). A retry of a trial that SIGTERM or a crash stopped
    takes over the checkpoint of the trial it retries, so it continues from that epoch instead of epoch 1 (the
    checkpoint holds weights, Adam state and RNG state: the same history as an uninterrupted trial)."""
    path = runs / f"trial{trial.number}.ckpt"
    src = trial.user_attrs.get("retry_of")
    if src is not None and (runs / f"trial{src}.ckpt").is_file() and not path.is_file():
        (runs / f"trial{src}.ckpt").rename(path)
    return path


def make_objective(args, name, data, device, epochs, precision, runs, worker=0):
    def objective(trial):
        hp, lr, batch_size = suggest(trial, name)
        cfg = FitConfig(epochs=epochs, batch_size=batch_size, seed=args.seed, select="val_spearman",
                        patience=args.patience, precision=precision)
        trial.set_user_attr("worker", worker)
        ckpt = trial_checkpoint(runs, trial)
        resume = ckpt.is_file()
        reported = set()

        def on_epoch(result):
            r = result["history"][-1]
            print(f"{name} trial {trial.number:2d} (worker {worker}) epoch {r['epoch']:2d}/{epochs} loss {r['train_loss']:.4f} "
                  f"val_loss {r['val_loss']:.4f} val_spearman {r['val_spearman']:.4f} {r['seconds']:.1f}s", flush=True)
            for h in result["history"]:   # after a resume, also the epochs the checkpoint brought (for the pruner)
                if h["epoch"] not in reported:
                    trial.report(h["val_spearman"], h["epoch"])
                    reported.add(h["epoch"])
            if trial.should_prune():
                ckpt.unlink(missing_ok=True)
                raise optuna.TrialPruned()

        seed_everything(args.seed)
        if resume:
            print(f"{name} trial {trial.number}: continuing trial {trial.user_attrs.get('retry_of')} from its checkpoint "
                  f"{ckpt}", flush=True)
        _, result = train_rna(name, hp, lr, data, cfg, device, on_epoch=on_epoch, ckpt=ckpt, resume=resume)
        if resume:
            trial.set_user_attr("resumed_after_epoch", len(result["history"]) - result["epochs_trained"])
        if result["interrupted"]:   # --resume reruns it with the same parameters, from its checkpoint
            trial.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            trial.set_user_attr("interrupted_after_epoch", len(result["history"]))
            trial.study.stop()
            return float("nan")   # Optuna marks the trial FAIL (one warning line, no traceback); run_trials then exits
        save_torch(runs / f"trial{trial.number}.pt", {"hp": hp, "lr": lr, "batch_size": batch_size,
                                                      "state": result["best_state"], "history": result["history"]})
        ckpt.unlink(missing_ok=True)
        trial.set_user_attr("best_epoch", result["best"]["epoch"])
        trial.set_user_attr("epochs_run", len(result["history"]))
        return result["best"]["val_spearman"]
    return objective


def search_worker(args, name, worker, n_trials, epochs, precision, device, runs):
    """A local worker process: its share of the trials on the shared study, then exit."""
    torch.set_num_threads(args.threads or worker_threads(args.workers))
    device = worker_device(worker, device)
    quiet()
    data, record = load_q2(args, [args.protein], device)
    study = study_of(args, name, record, epochs, runs, worker=worker)
    study.optimize(make_objective(args, name, data, device, epochs, precision, runs, worker), n_trials=n_trials)


def run_trials(args, name, data, record, device, epochs, precision, runs):
    """Bring the study to --trials finished (complete or pruned) trials: local workers first, then the parent
    itself runs whatever is still missing (trials of a crashed worker, retried)."""
    study = study_of(args, name, record, epochs, runs, fresh=not (args.resume or args.search_only))
    if not study.trials:
        study.enqueue_trial({**DEFAULT_HP[name], "lr": args.lr, "batch_size": args.batch_size}, skip_if_exists=True)
    need = max(0, args.trials - finished(study))
    if args.workers > 1 and need:
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=search_worker, args=(args, name, w, k, epochs, precision, device, runs))
                 for w, k in enumerate(split_trials(need, args.workers)) if k]
        print(f"{name}: {need} trials over {len(procs)} worker processes, {args.threads or worker_threads(args.workers)} "
              f"threads each", flush=True)
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
        crashed = [w for w, proc in enumerate(procs) if proc.exitcode != 0]
        if crashed and not is_url(args.storage or ""):
            print(f"{name}: workers {crashed} exited with an error; their running trials "
                  f"{fail_and_retry_orphans(study)} are marked FAIL and retried")
    need = max(0, args.trials - finished(study))
    if need:
        study.optimize(make_objective(args, name, data, device, epochs, precision, runs), n_trials=need,
                       callbacks=[MaxTrialsCallback(args.trials, states=FINISHED)])
    if STOP.is_set():
        raise SearchInterrupted(f"{name} search stopped by SIGTERM at an epoch end; the running trial is marked FAIL and "
                                f"queued again with its parameters and checkpoint: continue with the same command and --resume")
    return study


def search(args, name, data, record, device, experiment):
    epochs = args.epochs or EPOCHS[name]
    precision = resolve_precision(args.precision, device, cpu_bf16_pays=(name != "cnn"))   # measured, common/training/device.py
    out = Path(args.out_dir) / experiment / name
    runs = Path(args.run_dir) / experiment / name
    if args.search_only:   # helpers join a shared study and write no metrics: no lock
        runs.mkdir(parents=True, exist_ok=True)
        quiet()
        study = run_trials(args, name, data, record, device, epochs, precision, runs)
        print(f"{name}: {finished(study)} of {args.trials} trials finished in the study", flush=True)
        return None
    with lock_run(out, runs):   # a second process on this search refuses at once (its --workers are its children)
        return search_locked(args, name, data, record, device, experiment, epochs, precision, out, runs)


def search_locked(args, name, data, record, device, experiment, epochs, precision, out, runs):
    guard_finished(out / "metrics.json", args)
    runs.mkdir(parents=True, exist_ok=True)
    started = time.time()
    quiet()
    study = run_trials(args, name, data, record, device, epochs, precision, runs)
    print(f"{name}: {finished(study)} of {args.trials} trials finished in the study", flush=True)
    trials = study.trials_dataframe()
    write_text(out / "trials.csv", trials.to_csv(index=False))

    best = study.best_trial
    study_name = study.study_name
    saved = best_trial_weights(args, name, best, data, device, epochs, precision, runs)
    history = saved["history"]
    best_epoch = max(history, key=lambda h: h["val_spearman"])
    config = {**vars(args), "model": name, "epochs": epochs, "precision": precision, "hp": saved["hp"], "lr": saved["lr"],
              "batch_size": saved["batch_size"], "search": {"trials": finished(study), "best_trial": best.number,
              "failed_and_retried": len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))),
              "sampler": "TPE", "pruner": "median", "study": study_name,
              "storage": "database" if is_url(args.storage or "") else "journal file", "workers": args.workers}}
    config["storage"] = redact(args.storage)
    ceiling = record.get("noise_ceiling")
    rec = kept_search(out / "metrics.json", finished(study), best.number, history)
    if rec is not None:   # --resume met a finished study: its record keeps its timings, and the seeds go on
        print(f"{name}: the search finished earlier (best trial {best.number}); its metrics are kept", flush=True)
    else:
        model = build_rna_model(name, **saved["hp"]).to(device)
        test = test_report(model, saved["state"], data["test"])
        result = {"history": history, "best": {"epoch": best_epoch["epoch"], "val_spearman": best_epoch["val_spearman"]},
                  "stopped_early": early_stopped(history, best_epoch["epoch"], args.patience)}
        rec = metrics_record(experiment, name, config, record, device, args.seed, sum(p.numel() for p in model.parameters()),
                             result, started, extra={"status": "complete", "test": test, "noise_ceiling": ceiling,
                                                     "search_seconds": time.time() - started,   # this call's wall time
                                                     "trial_seconds_total": trial_seconds(study)})
        write_json(out / "metrics.json", rec)
    if args.seeds:   # seed variance of the selected configuration: retrain it once per seed
        retrain_seeds(args, name, config, record, data, device, experiment, rec["params"])
    test = rec["test"]
    print(f"{name}: best trial {best.number} {saved['hp']} lr {saved['lr']:.2e} batch {saved['batch_size']}; "
          f"val Spearman {best_epoch['val_spearman']:.4f} (epoch {best_epoch['epoch']}); test Spearman {test['spearman']:.4f} "
          f"Pearson {test['pearson']:.4f} MSE {test['mse']:.4f}" + (f"; noise ceiling {ceiling:.4f}" if ceiling else ""))
    return rec


def kept_search(metrics_path, trials, best_trial, history):
    """The finished search record at metrics_path if it already describes this study (same number of finished trials,
    same best trial and history), else None: a --resume that ran no new trial keeps the file as it was instead of
    rewriting it with new timestamps."""
    rec = finished_record(metrics_path)
    if rec is None:
        return None
    search = rec.get("config", {}).get("search", {})
    same = (search.get("trials"), search.get("best_trial")) == (trials, best_trial) and rec.get("history") == history
    return rec if same else None


def trial_seconds(study):
    """Wall seconds of every trial of the study that ran to an end (complete, pruned or failed), summed: the search's
    cost across all the calls and sessions that --resume joined (search_seconds counts only the last call)."""
    return float(sum((t.datetime_complete - t.datetime_start).total_seconds() for t in study.trials
                     if t.datetime_start and t.datetime_complete))


def best_trial_weights(args, name, best, data, device, epochs, precision, runs):
    """The selected trial's saved weights; if another machine ran it (its file is not in this --run-dir),
    retrain its configuration here with the same seed."""
    path = runs / f"trial{best.number}.pt"
    if path.is_file():
        return load_torch(path, f"delete it and rerun with --resume (trial {best.number} is retrained), or rerun the "
                          f"search with --force", weights_only=False)
    print(f"{name}: trial {best.number}'s weights are not in {runs} (another machine ran it); retraining its configuration")
    hp, lr, batch_size = suggest(optuna.trial.FixedTrial(best.params), name)
    cfg = FitConfig(epochs=epochs, batch_size=batch_size, seed=args.seed, select="val_spearman",
                    patience=args.patience, precision=precision)
    seed_everything(args.seed)
    _, result = train_rna(name, hp, lr, data, cfg, device)
    saved = {"hp": hp, "lr": lr, "batch_size": batch_size, "state": result["best_state"], "history": result["history"]}
    save_torch(path, saved)
    return saved


def retrain_seeds(args, name, config, record, data, device, experiment, params, variant=None):
    """Retrain a configuration once per --seeds seed: <variant>/seed<k>/metrics.json and aggregate.json
    (variant: the model's name for its selected configuration, <model>_default for the homework default)."""
    variant = variant or name
    out = Path(args.out_dir) / experiment / variant
    ceiling = record.get("noise_ceiling")
    for seed in args.seeds:   # each seed through the shared run lifecycle (SIGTERM: an interrupted record, exit 143)
        files = RunFiles.under(args.out_dir, args.run_dir, experiment, variant, f"seed{seed}")
        cfg = FitConfig(epochs=config["epochs"], batch_size=config["batch_size"], seed=seed, select="val_spearman",
                        patience=args.patience, precision=config["precision"])
        state = {}

        def train(from_checkpoint, seed=seed, cfg=cfg, files=files, state=state):   # called within this iteration
            seed_everything(seed)
            state["t0"] = time.time()
            state["model"], res = train_rna(name, config["hp"], config["lr"], data, cfg, device, ckpt=files.checkpoint,
                                            resume=from_checkpoint, on_epoch=epoch_printer(
                                                f"{variant} seed {seed}", cfg.epochs, ("train_loss", "val_loss", "val_spearman")))
            return res

        def record_of(res, finished, seed=seed, state=state):
            extra = {"test": test_report(state["model"], res["best_state"], data["test"]), "noise_ceiling": ceiling} \
                if finished else {}
            return metrics_record(experiment, variant, {**config, "seed": seed}, record, device, seed, params, res,
                                  state["t0"], extra=extra)

        rec = run_once(files, resume=args.resume, force=args.force, train=train, record=record_of,
                       label=f"{variant} seed {seed}")
        if rec is not None and "t0" in state:
            print(f"{variant} seed {seed}: val Spearman {rec['best']['val_spearman']:.4f} (epoch {rec['best']['epoch']}), "
                  f"test Spearman {rec['test']['spearman']:.4f}, {rec['seconds_per_epoch_median']:.1f} s/epoch", flush=True)
    agg = write_aggregate(out, ["test.spearman", "test.pearson", "test.mse", "best.val_spearman"])
    print(f"{variant}: test Spearman over seeds {agg['seeds']}: {agg['metrics']['test.spearman']['mean']:.4f} "
          f"± {agg['metrics']['test.spearman']['std']:.4f}")
    return agg


def retrain_selected(args, name, data, record, device, experiment):
    """--retrain-selected: no search; retrain the configuration recorded in <model>/metrics.json per seed."""
    path = Path(args.out_dir) / experiment / name / "metrics.json"
    if not path.is_file():
        raise UserError(f"--retrain-selected needs {path}; run the search first (python q2_1_cnn_lstm.py --model {name})")
    searched = read_json(path)
    precision = resolve_precision(args.precision, device, cpu_bf16_pays=(name != "cnn"))
    config = {**vars(args), "model": name, "epochs": searched["config"]["epochs"], "precision": precision,
              **{k: searched["config"][k] for k in ("hp", "lr", "batch_size", "search")},
              "selected_from": str(path), "selected_data_checksum": searched["data"].get("checksum"),
              "storage": redact(args.storage)}
    params = sum(p.numel() for p in build_rna_model(name, **config["hp"]).parameters())
    print(f"{name}: retraining the selected {config['hp']} lr {config['lr']:.2e} batch {config['batch_size']} "
          f"({config['epochs']} epochs at most, seeds {args.seeds})")
    with lock_run(path.parent, Path(args.run_dir) / experiment / name):
        return retrain_seeds(args, name, config, record, data, device, experiment, params)


def retrain_default(args, name, data, record, device, experiment):
    """--retrain-default: the homework default configuration (each search's trial 0) once per seed, with the
    search's epoch budget and early stopping: the baseline that tuning is compared with."""
    epochs = args.epochs or EPOCHS[name]
    precision = resolve_precision(args.precision, device, cpu_bf16_pays=(name != "cnn"))
    hp = dict(DEFAULT_HP[name])
    config = {**vars(args), "model": name, "epochs": epochs, "precision": precision, "hp": hp, "lr": args.lr,
              "batch_size": args.batch_size, "storage": redact(args.storage), "configuration": "homework default"}
    params = sum(p.numel() for p in build_rna_model(name, **hp).parameters())
    print(f"{name}: training the homework default {hp} lr {args.lr:.2e} batch {args.batch_size} "
          f"({epochs} epochs at most, patience {args.patience}, seeds {args.seeds})")
    variant = f"{name}_default"
    with lock_run(Path(args.out_dir) / experiment / variant, Path(args.run_dir) / experiment / variant):
        return retrain_seeds(args, name, config, record, data, device, experiment, params, variant=variant)


def main(argv=None):
    args = parse_args(argv)
    experiment = experiment_name("q2_1", args.quick)
    device, _ = setup_device(args)
    stop_on_sigterm()
    data, record = load_q2(args, [args.protein], device)
    if "ceilings" in record:
        record["noise_ceiling"] = record["ceilings"][record["proteins"][0]]["noise_ceiling"]
    print(f"data: {source_name(record)} {record['path']} (md5 {record['checksum']}) {record['proteins'][0]}={record['ids'][0]} "
          f"sizes {record['sizes']}; device {device}, precision {args.precision} (auto: per model)")
    models = ["cnn", "lstm"] if args.model == "both" else [args.model]
    if args.retrain_selected or args.retrain_default:
        for name in models:
            (retrain_selected if args.retrain_selected else retrain_default)(args, name, data, record, device, experiment)
        return
    recs = [search(args, name, data, record, device, experiment) for name in models]
    if args.search_only:
        return
    exp_dir = Path(args.out_dir) / experiment
    done = [m for m in ("cnn", "lstm") if (exp_dir / m / "metrics.json").is_file()]   # also those of earlier calls
    for path in [plot_q2_curves(exp_dir, done), *[plot_search(exp_dir, m) for m in done]]:
        print(f"figure: {path}")
    print(f"\n{'model':6s} {'params':>8s} {'val sp':>7s} {'test sp':>7s} {'pearson':>7s} {'mse':>6s} {'s/epoch':>7s} {'ceiling':>7s}")
    for r in recs:
        print(f"{r['variant']:6s} {r['params']:8,d} {r['best']['val_spearman']:7.4f} {r['test']['spearman']:7.4f} "
              f"{r['test']['pearson']:7.4f} {r['test']['mse']:6.3f} {r['seconds_per_epoch_median']:7.2f} "
              f"{r['noise_ceiling'] or float('nan'):7.4f}")


def run():
    try:
        exit_on_user_error(main)
    except SearchInterrupted as e:
        print(f"interrupted: {e}", file=sys.stderr)
        raise SystemExit(143) from None


if __name__ == "__main__":
    run()
