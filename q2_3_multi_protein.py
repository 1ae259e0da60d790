"""Q2.3 — the homework's multi-protein proposal, implemented: one model for several RNA-binding proteins.

Model (common/rna/multi.py): an RNA encoder and a protein encoder, fused by an elementwise product and a
shared MLP head that predicts every protein for a probe at once; masked MSE over all (probe, protein) pairs;
selection on validation Spearman (mean over the training proteins).

Arms, per seed (default seeds 1 2 3: at seed 0 the single RBFOX1 arm would repeat Q2.1's selected run):
  seen/               one multi-protein model, a learned identity embedding per protein, on all proteins
  single/<protein>/   one single-protein model per protein (same encoder, lr, batch and stopping rule)
  fewshot/<protein>/  leave-one-protein-out: a NEW protein given by its own RNAcompete profile (few-shot
                      through a profile). The profile is the z-scored 5-mer log2-enrichment among the
                      protein's top 1 % probes of the TRAINING split, so the new protein's training
                      intensities make it; they enter neither the loss (its column has weight 0) nor model
                      selection (validation averages the other proteins).
  noprofile/<protein>/ the learned control: the few-shot arm with every profile set to zero (same model,
                      weights, data and seed), so it predicts the training proteins' shared binding
  profile_only.json   the baseline, no learned weights and no seed: each SetB probe scored by its protein's
                      profile match alone (the sum of the profile over its 5-mers, multi.profile_scores).
Training: at most --epochs 30, early stopping on validation Spearman with --patience 5. A run whose best epoch
is its last and that did not stop early is recorded as not converged (converged: false). Another cap has its
own folder: --epochs 60 writes figures/q2_3_cap60/ (the cap-sensitivity check, bench/q2_3_cap_queue.sh).
Encoder: --encoder-config selected (default) reads Q2.1's selected configuration (hyperparameters, lr, batch
size) from figures/q2_1/<encoder>/metrics.json; default is the homework default (lr 1e-3, batch 64). --lr and
--batch-size override either.

Reproduce:
    python q2_3_multi_protein.py                        # simulated set: RBFOX1 + five invented motifs (sim-*)
    python q2_3_multi_protein.py --data-dir DIR --proteins RBFOX1 PUM1 QKI HNRNPA1 SRSF1      # or --quick
Add --resume after an interruption: every epoch writes runs/q2_3/seed<k>/<arm>/checkpoint.pt; finished arms
keep their metrics files as they are.

Writes figures/q2_3/seed<k>/{seen,single/<protein>,fewshot/<protein>,noprofile/<protein>}/metrics.json,
figures/q2_3/profile_only.json, summary.json, table.md and per_protein.png.
"""
import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path

from common.reporting.plots_q2_3 import plot_q2_3
from common.reporting.q2_3 import summarise, table
from common.rna.baselines import profile_only
from common.rna.fit import DEFAULT_COURSE_DIR, load_q2, resolve_data_dir, test_report, train_rna
from common.rna.models import PATIENCE
from common.rna.multi import (
    REAL_PROTEINS,
    MultiProteinModel,
    default_proteins,
    encoder_config,
    kmer_descriptors,
    per_protein_test,
    train_multi,
)
from common.runfiles.files import UserError, exit_on_user_error, source_name, write_json, write_text
from common.runfiles.flags import HelpFormatter, add_common_args, parse_flags, positive_int
from common.runfiles.lifecycle import RunContext, RunFiles, run_once
from common.runfiles.provenance import code_version
from common.runfiles.records import experiment_name, metrics_record, stands_for_cap
from common.training.device import seed_everything, setup_device
from common.training.loop import FitConfig, convergence, epoch_printer, stop_on_sigterm

TOP_FRACTION = 0.01
CAP = 30   # the protocol's largest number of epochs (issue 28: at most 30, patience 5)


def experiment_for(epochs, quick):
    """q2_3 at the protocol's cap; another cap is another protocol, in its own folder (q2_3_cap<N>)."""
    return experiment_name("q2_3" if quick or epochs == CAP else f"q2_3_cap{epochs}", quick)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--data-dir", default=None,
                   help="course files folder (default data/rnacompete, else the simulated set)")
    p.add_argument("--proteins", nargs="+", default=None,
                   help=f"protein names from metadata, at least 3 (default: every protein of the simulated "
                        f"set, or {' '.join(REAL_PROTEINS)} on the course files)")
    p.add_argument("--holdout", nargs="+", default=None,
                   help="proteins to hold out in turn for few-shot (default: each one)")
    p.add_argument("--encoder", choices=["cnn", "lstm"], default="cnn", help="RNA encoder")
    p.add_argument("--encoder-config", choices=["selected", "default"], default="selected",
                   help="selected: Q2.1's selected configuration (--q2-1-dir); default: the homework default")
    p.add_argument("--q2-1-dir", default="figures/q2_1", help="where Q2.1's selected configurations are")
    p.add_argument("--patience", type=positive_int, default=PATIENCE,
                   help="early stopping: epochs without a better val Spearman")
    add_common_args(p, epochs=CAP, batch_size=None, lr=None, quick_epochs=2, seed_list="1 2 3")
    args, opts = parse_flags(p, argv, options=("data_dir", "q2_1_dir"))
    if args.proteins is not None and len(args.proteins) < 3:
        p.error("--proteins needs at least 3 names (two to train on while one is held out)")
    if args.holdout and args.proteins and not set(args.holdout) <= set(args.proteins):
        p.error(f"--holdout {args.holdout} must be among --proteins {args.proteins}")
    if args.seeds is None:   # --seed N: that one seed; neither: seeds 1-3
        args.seeds = [1, 2, 3] if args.seed is None else [args.seed]
    if args.quick:
        args.seeds = args.seeds[:1]
    return args, opts


@dataclass(frozen=True)
class Q23Config:
    """The protocol values of one seed's arms: what each arm's record stores as "config" (with its
    variant)."""
    seed: int
    encoder: str            # cnn | lstm
    encoder_hp: dict
    lr: float
    batch_size: int
    hp_source: str
    epochs: int
    patience: int
    precision: str
    proteins: tuple
    quick: bool
    variant: str = ""       # set per arm: multi_identity, single_<protein>, fewshot_<protein>, noprofile_<p.>


def run_arm(run, ctx, folder, train, test_of):
    """One arm (run: its Q23Config with the arm's variant) through the shared run lifecycle;
    train(from_checkpoint, ckpt) -> (model, fit result); test_of(model, result) -> the test fields of its
    record."""
    seed, opts = run.seed, ctx.opts
    files = RunFiles.under(opts.out_dir, opts.run_dir, ctx.experiment, f"seed{seed}", folder)
    state = {}

    def fit_arm(from_checkpoint):
        seed_everything(seed)
        state["started"] = time.time()
        state["model"], result = train(from_checkpoint, files.checkpoint)
        return result

    def record(result, finished):
        extra = {"arm": folder, **(test_of(state["model"], result) | convergence(result) if finished else {})}
        return metrics_record(ctx.experiment, run.variant, config=run, options=ctx.options,
                              data=ctx.data_record, device=ctx.device, seed=seed,
                              params=sum(p.numel() for p in state["model"].parameters()), result=result,
                              started=state["started"], extra=extra)

    rec = run_once(files, resume=opts.resume, force=opts.force, train=fit_arm, record=record,
                   label=f"seed {seed} {folder}")
    if not stands_for_cap(rec, run.epochs):
        raise UserError(f"{files.metrics} ran to its cap of {rec['config']['epochs']} epochs: it cannot "
                        f"stand for --epochs {run.epochs}; delete it, or pass --force to train it again")
    if not rec.get("converged", True):
        print(f"seed {seed} {folder}: NOT converged (best epoch {rec['best_epoch']} is its last of "
              f"{rec['epochs_run']}); raise --epochs", flush=True)
    return rec


def protocol(run, ctx, names, profiles, holdout):
    """Every arm of one seed (run: its Q23Config); returns {arm kind: {protein: test Spearman}} and the
    epochs."""
    P, data, hp = len(names), ctx.data, run.encoder_hp
    cfg = FitConfig(epochs=run.epochs, batch_size=run.batch_size, seed=run.seed, select="val_spearman",
                    precision=run.precision, patience=run.patience)

    def log(tag):
        return epoch_printer(f"seed {run.seed} {tag:22s}", run.epochs, ("train_loss", "val_spearman"))

    def multi(folder, variant, train_cols, protein, extra):
        def train(from_checkpoint, ckpt):
            # the no-profile control: the few-shot model given an all-zero profile for every protein
            descriptors = {"profile": profiles, "none": 0 * profiles}.get(protein)
            model = MultiProteinModel(run.encoder, hp, P, descriptors=descriptors,
                                      protein="identity" if descriptors is None else "profile")
            return model, train_multi(model, data, train_cols, run.lr, cfg, ctx.device, on_epoch=log(folder),
                                      ckpt=ckpt, resume=from_checkpoint)

        def test_of(model, result):
            model.load_state_dict(result["best_state"])
            test = per_protein_test(model, data["test"], names)
            return {"test": test, **extra(test)}
        return run_arm(replace(run, variant=variant), ctx, folder, train, test_of)

    seen = multi("seen", "multi_identity", list(range(P)), "identity", lambda test: {})
    single = {}
    for j, name in enumerate(names):
        def train_single(from_checkpoint, ckpt, j=j, name=name):
            return train_rna(run.encoder, hp, run.lr, data, cfg, ctx.device, col=j,
                             on_epoch=log(f"single {name}"), ckpt=ckpt, resume=from_checkpoint)
        single[name] = run_arm(replace(run, variant=f"single_{name}"), ctx, f"single/{name}", train_single,
                               lambda model, result, j=j: {"test": test_report(model, result["best_state"],
                                                                               data["test"], col=j)})
    fewshot, control = {}, {}
    for kind, arms, protein in (("fewshot", fewshot, "profile"), ("noprofile", control, "none")):
        for name in holdout or names:
            others = [n for n in names if n != name]
            arms[name] = multi(f"{kind}/{name}", f"{kind}_{name}", [names.index(n) for n in others], protein,
                               lambda test, name=name, others=others: {
                                   "held_out": name, "train_proteins": others, "held_out_test": test[name]})
    records = [seen, *single.values(), *fewshot.values(), *control.values()]
    return {"single": {n: r["test"]["spearman"] for n, r in single.items()},
            "multi_seen": {n: seen["test"][n]["spearman"] for n in names},
            "fewshot": {n: r["held_out_test"]["spearman"] for n, r in fewshot.items()},
            "noprofile": {n: r["held_out_test"]["spearman"] for n, r in control.items()},
            "not_converged": [f"seed{run.seed}/{r['arm']}" for r in records if not r["converged"]],
            "epochs": {r["arm"]: {"best": r["best_epoch"], "run": r["epochs_run"],
                                  "stopped_early": r["stopped_early"], "cap": r["config"]["epochs"]}
                       for r in records}}


def main(argv=None):
    args, opts = parse_args(argv)
    stop_on_sigterm()
    experiment = experiment_for(args.epochs, args.quick)
    hp, lr, batch, source = encoder_config(args.encoder, args.encoder_config, args.q2_1_dir, args.lr,
                                           args.batch_size)
    # may simulate
    data_dir = resolve_data_dir(args.data_dir or DEFAULT_COURSE_DIR, args.data_dir is not None)
    names = args.proteins or default_proteins(data_dir)
    if len(names) < 3:
        raise UserError(f"the data set has {len(names)} proteins ({names}); Q2.3 needs at least 3: "
                        f"pass --proteins")
    if args.holdout and not set(args.holdout) <= set(names):
        raise UserError(f"--holdout {args.holdout} must be among the proteins {names}")
    # bf16 on CPU pays for the BiLSTM encoder, not for the CNN (measured, common/training/device.py)
    device, precision, malloc_kept = setup_device(opts, cpu_bf16_pays=(args.encoder != "cnn"))
    data, record = load_q2(data_dir, names, device, args.quick)
    names = record["proteins"]
    print(f"data: {source_name(record)} {record['path']} (md5 {record['checksum']}) proteins "
          f"{dict(zip(names, record['ids']))} sizes {record['sizes']}; device {device}, precision "
          f"{precision}; encoder {args.encoder} from {source}: {hp}, lr {lr:.3g}, batch {batch}; at most "
          f"{args.epochs} epochs, patience {args.patience}; seeds {args.seeds}")
    ctx = RunContext(experiment, data, record, device, opts, options=opts.record(malloc_kept=malloc_kept))
    base = Path(opts.out_dir) / experiment
    profiles = kmer_descriptors(data["train"], top_fraction=TOP_FRACTION)   # from the training split only
    baseline = {"experiment": experiment, "data": record, **profile_only(data, profiles, names, TOP_FRACTION),
                "code": code_version()}
    write_json(base / "profile_only.json", baseline)
    print("profile-only baseline (test Spearman): "
          + ", ".join(f"{n} {v['test']['spearman']:.4f}" for n, v in baseline["proteins"].items()))
    per_seed = []
    for seed in args.seeds:
        run = Q23Config(seed=seed, encoder=args.encoder, encoder_hp=hp, lr=lr, batch_size=batch,
                        hp_source=source, epochs=args.epochs, patience=args.patience, precision=precision,
                        proteins=tuple(names), quick=args.quick)
        per_seed.append(protocol(run, ctx, names, profiles, args.holdout))
    summary = summarise(names, record["ids"], per_seed, baseline, record, protocol={
        "encoder": args.encoder, "encoder_hp": hp, "lr": lr, "batch_size": batch, "encoder_source": source,
        "epochs": args.epochs, "patience": args.patience, "seeds": args.seeds, "device": device})
    write_json(base / "summary.json", {**summary, "code": code_version()})
    text = table(summary, record)
    write_text(base / "table.md", text)
    print("\n" + text)
    print(f"figure: {plot_q2_3(base)}")


if __name__ == "__main__":
    exit_on_user_error(main)
