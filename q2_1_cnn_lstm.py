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
    python q2_1_cnn_lstm.py                     # course files in data/rnacompete, else the simulator
    python q2_1_cnn_lstm.py --data-dir DIR --protein RBFOX1 --trials 20
    python q2_1_cnn_lstm.py --quick             # smoke run: 1 trial, 1 epoch, 2,000 probes
    python q2_1_cnn_lstm.py --resume            # continue from its runs/ journal study (keeps a finished one)
    python q2_1_cnn_lstm.py --workers 4         # 4 local processes on one study (threads split, a GPU each)
    python q2_1_cnn_lstm.py --storage postgresql://user@host/db --resume   # every machine: one study
    python q2_1_cnn_lstm.py --seeds 0 1 2       # after the search, retrain the selected config per seed
    python q2_1_cnn_lstm.py --retrain-selected --seeds 0 1 2   # no search: the committed selection per seed
    python q2_1_cnn_lstm.py --retrain-default --seeds 0 1 2    # the homework default per seed (the baseline)

Writes figures/q2_1/<model>/metrics.json and trials.csv (seed<k>/ for the retrained selection;
<model>_default/seed<k>/ for the homework default), and
figures/q2_1/{loss_curves,val_spearman,search_<model>}.png. On the calibrated simulated set, expect test
Spearman about 0.58 (default CNN) to 0.61-0.62 (tuned), below its sequence ceiling 0.646 (README).
"""
import argparse
import time
from pathlib import Path

from common.reporting.plots_q2 import plot_q2_curves, plot_search, search_table
from common.rna.fit import load_q2, test_report
from common.rna.models import (
    EPOCH_CAP,
    HOMEWORK_DEFAULT_BATCH,
    HOMEWORK_DEFAULT_HP,
    HOMEWORK_DEFAULT_LR,
    build_rna_model,
)
from common.rna.tuning import (
    Q21Config,
    SearchSpec,
    add_search_args,
    best_trial_weights,
    kept_search,
    kept_without_study,
    precision_of,
    retrain_seed,
    run_trials,
    search_info,
    trial_seconds,
)
from common.runfiles.files import (
    UserError,
    exit_on_user_error,
    read_json,
    source_name,
    write_json,
    write_text,
)
from common.runfiles.flags import HelpFormatter, add_common_args, parse_flags, refuse_flags
from common.runfiles.lifecycle import RunContext
from common.runfiles.records import (
    experiment_name,
    finished_record,
    guard_finished,
    lock_run,
    metrics_record,
    write_aggregate,
)
from common.runfiles.search import finished, quiet, redact
from common.training.device import setup_device
from common.training.loop import early_stopped, stop_on_sigterm


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--model", choices=["cnn", "lstm", "both"], default="both",
                   help="which architecture(s) to tune")
    p.add_argument("--data-dir", default=None, help="folder with the course's norm_data.txt + metadata.xlsx "
                   "(default data/rnacompete, falling back to the simulated set)")
    p.add_argument("--protein", default="RBFOX1",
                   help="protein name from metadata, or an RNAcompete id (RBFOX1 = RNCMPT00168)")
    add_search_args(p)
    p.add_argument("--retrain-selected", action="store_true",
                   help="skip the search: retrain the configuration recorded in "
                        "figures/q2_1/<model>/metrics.json once per --seeds seed (seed<k>/metrics.json + "
                        "aggregate.json)")
    p.add_argument("--retrain-default", action="store_true", help="skip the search: train the homework "
                   "default configuration (trial 0 of every search; --lr and --batch-size) once per --seeds "
                   "seed, with the search's epochs and early stopping, into "
                   "figures/q2_1/<model>_default/seed<k>/: the baseline of the tuned-vs-default comparison")
    add_common_args(p, epochs=None, batch_size=HOMEWORK_DEFAULT_BATCH, lr=HOMEWORK_DEFAULT_LR, quick_epochs=1)
    args, opts = parse_flags(p, argv, options=("data_dir", "storage", "workers", "search_only"))
    if args.retrain_selected and args.retrain_default:
        p.error("--retrain-selected and --retrain-default are two separate runs; give one of them")
    for flag in ("retrain_selected", "retrain_default"):
        if getattr(args, flag) and not args.seeds:
            p.error(f"--{flag.replace('_', '-')} needs --seeds, e.g. --seeds 0 1 2")
    if args.retrain_selected:
        refuse_flags(p, argv, ["lr", "batch_size"], "--retrain-selected trains the recorded selection's own")
    if args.trials is None:
        args.trials = 1 if args.quick else 20
    return args, opts


def search(args, name, ctx):
    """The search of one model -> its record: the selected trial's best epoch, tested once on SetB."""
    opts, device = ctx.opts, ctx.device
    out, runs = Path(opts.out_dir) / ctx.experiment / name, Path(opts.run_dir) / ctx.experiment / name
    spec = SearchSpec(model=name, protein=args.protein, seed=args.seed, trials=args.trials,
                      epochs=args.epochs or EPOCH_CAP[name], patience=args.patience,
                      precision=precision_of(opts.precision, device, name), default_lr=args.lr,
                      default_batch_size=args.batch_size, runs=str(runs), storage=args.storage,
                      workers=args.workers, threads=opts.threads, data_dir=args.data_dir, quick=args.quick,
                      fresh=not (opts.resume or args.search_only))
    if opts.resume and not (opts.force or args.search_only):
        kept = kept_without_study(spec, out / "metrics.json", ctx.data_record["checksum"])
        if kept is not None:   # the seeds go on from the record's selection
            if args.seeds:
                retrain(args, name, ctx, selected=True)
            return kept
    if args.search_only:   # helpers join a shared study and write no metrics: no lock
        runs.mkdir(parents=True, exist_ok=True)
        quiet()
        study = run_trials(spec, ctx.data, ctx.data_record, device)
        print(f"{name}: {finished(study)} of {args.trials} trials finished in the study", flush=True)
        return None
    with lock_run(out, runs):   # a second process on this search refuses at once (--workers are its children)
        guard_finished(out / "metrics.json", force=opts.force, resume=opts.resume)
        runs.mkdir(parents=True, exist_ok=True)
        started = time.time()
        quiet()
        study = run_trials(spec, ctx.data, ctx.data_record, device)
        print(f"{name}: {finished(study)} of {args.trials} trials finished in the study", flush=True)
        write_text(out / "trials.csv", study.trials_dataframe().to_csv(index=False))
        best = study.best_trial
        saved = best_trial_weights(spec, best, ctx.data, device)
        history = saved["history"]
        best_epoch = max(history, key=lambda h: h["val_spearman"])
        config = Q21Config(model=name, protein=args.protein, seed=args.seed, epochs=spec.epochs,
                           patience=args.patience, precision=spec.precision, hp=saved["hp"], lr=saved["lr"],
                           batch_size=saved["batch_size"], quick=args.quick, configuration="search selection",
                           search=search_info(study, spec))
        rec = kept_search(finished_record(out / "metrics.json"), finished(study), best.number, history)
        if rec is not None:   # --resume met a finished study: its record keeps its timings, the seeds go on
            print(f"{name}: the search finished earlier (best trial {best.number}); its metrics are kept",
                  flush=True)
        else:
            model = build_rna_model(name, **saved["hp"]).to(device)
            result = {"history": history,
                      "best": {"epoch": best_epoch["epoch"], "val_spearman": best_epoch["val_spearman"]},
                      "stopped_early": early_stopped(history, best_epoch["epoch"], args.patience)}
            rec = metrics_record(ctx.experiment, name, config=config, options=ctx.options,
                                 data=ctx.data_record, device=device, seed=args.seed,
                                 params=sum(p.numel() for p in model.parameters()), result=result,
                                 started=started, extra={
                                     "status": "complete",
                                     "test": test_report(model, saved["state"], ctx.data["test"]),
                                     "noise_ceiling": ctx.data_record.get("noise_ceiling"),
                                     "search_seconds": time.time() - started,   # this call's wall time
                                     "trial_seconds_total": trial_seconds(study)})
            write_json(out / "metrics.json", rec)
        if args.seeds:   # seed variance of the selected configuration, under the search's lock
            retrain_seeds(config, args.seeds, ctx, rec["params"])
    print(f"{name}: best trial {best.number} {saved['hp']} lr {saved['lr']:.2e} batch {saved['batch_size']}; "
          f"val Spearman {best_epoch['val_spearman']:.4f} (epoch {best_epoch['epoch']}); test Spearman "
          f"{rec['test']['spearman']:.4f} Pearson {rec['test']['pearson']:.4f} MSE {rec['test']['mse']:.4f}")
    return rec


def retrain_seeds(config, seeds, ctx, params, variant=None):
    """Retrain a configuration (its Q21Config) once per seed: <variant>/seed<k>/metrics.json and
    aggregate.json (variant: the model's name for its selected configuration, <model>_default for the homework
    default)."""
    opts, variant = ctx.opts, variant or config.model
    for seed in seeds:   # each through the shared run lifecycle (SIGTERM: an interrupted record, exit 143)
        retrain_seed(config, seed, ctx, params, variant)
    agg = write_aggregate(Path(opts.out_dir) / ctx.experiment / variant,
                          ["test.spearman", "test.pearson", "test.mse", "best.val_spearman"])
    print(f"{variant}: test Spearman over seeds {agg['seeds']}: "
          f"{agg['metrics']['test.spearman']['mean']:.4f} ± {agg['metrics']['test.spearman']['std']:.4f}")
    return agg


def retrain(args, name, ctx, selected=False):
    """--retrain-selected: the configuration recorded in <model>/metrics.json, per seed. --retrain-default:
    the homework default (each search's trial 0) per seed, with the search's epoch budget and early stopping:
    the baseline that tuning is compared with."""
    opts = ctx.opts
    precision = precision_of(opts.precision, ctx.device, name)
    common = {"model": name, "protein": args.protein, "seed": args.seed, "patience": args.patience,
              "precision": precision, "quick": args.quick}
    if selected or args.retrain_selected:
        path = Path(opts.out_dir) / ctx.experiment / name / "metrics.json"
        if not path.is_file():
            raise UserError(f"--retrain-selected needs {path}; run the search first (python q2_1_cnn_lstm.py "
                            f"--model {name})")
        searched = read_json(path)
        c = searched["config"]
        config = Q21Config(**common, epochs=c["epochs"], hp=c["hp"], lr=c["lr"], batch_size=c["batch_size"],
                           configuration="search selection", search=c["search"], selected_from=str(path),
                           selected_data_checksum=searched["data"].get("checksum"))
        variant = name
    else:
        config = Q21Config(**common, epochs=args.epochs or EPOCH_CAP[name],
                           hp=dict(HOMEWORK_DEFAULT_HP[name]),
                           lr=args.lr, batch_size=args.batch_size, configuration="homework default")
        variant = f"{name}_default"
    params = sum(p.numel() for p in build_rna_model(name, **config.hp).parameters())
    print(f"{name}: training the {config.configuration} {config.hp} lr {config.lr:.2e} batch "
          f"{config.batch_size} ({config.epochs} epochs at most, patience {config.patience}, seeds "
          f"{args.seeds})")
    with lock_run(*(Path(d) / ctx.experiment / variant for d in (opts.out_dir, opts.run_dir))):
        return retrain_seeds(config, args.seeds, ctx, params, variant=variant)


def main(argv=None):
    args, opts = parse_args(argv)
    experiment = experiment_name("q2_1", args.quick)
    device, _, malloc_kept = setup_device(opts)
    stop_on_sigterm()
    data, record = load_q2(args.data_dir, [args.protein], device, args.quick)
    if "ceilings" in record:
        record["noise_ceiling"] = record["ceilings"][record["proteins"][0]]["noise_ceiling"]
    print(f"data: {source_name(record)} {record['path']} (md5 {record['checksum']}) "
          f"{record['proteins'][0]}={record['ids'][0]} sizes {record['sizes']}; device {device}, precision "
          f"{opts.precision} (auto: per model)")
    ctx = RunContext(experiment, data, record, device, opts,
                     options=opts.record(malloc_kept=malloc_kept, storage=redact(args.storage)))
    models = ["cnn", "lstm"] if args.model == "both" else [args.model]
    if args.retrain_selected or args.retrain_default:
        for name in models:
            retrain(args, name, ctx)
        return
    recs = [search(args, name, ctx) for name in models]
    if args.search_only:
        return
    exp_dir = Path(opts.out_dir) / experiment
    done = [m for m in ("cnn", "lstm") if (exp_dir / m / "metrics.json").is_file()]   # also earlier calls'
    for path in [plot_q2_curves(exp_dir, done), *[plot_search(exp_dir, m) for m in done]]:
        print(f"figure: {path}")
    print(search_table(recs))


if __name__ == "__main__":
    exit_on_user_error(main)   # SIGTERM in a search: one stderr line, exit 143 (common/rna/tuning.py)
