"""Q2.3 — the homework's multi-protein proposal, implemented: one model for several RNA-binding proteins.

Model (common/rna/multi.py): an RNA encoder and a protein encoder, fused by an elementwise product and a shared MLP
head that predicts every protein for a probe at once; masked MSE over all (probe, protein) pairs; selection on
validation Spearman (mean over the training proteins).

Arms, per seed (default seeds 1 2 3: at seed 0 the single RBFOX1 arm would repeat Q2.1's selected run):
  seen/               one multi-protein model, a learned identity embedding per protein, trained on all proteins
  single/<protein>/   one single-protein model per protein (same encoder, lr, batch and stopping rule)
  fewshot/<protein>/  leave-one-protein-out: a NEW protein given by its own RNAcompete profile (few-shot through a
                      profile). The profile is the z-scored 5-mer log2-enrichment among the protein's top 1 % probes
                      of the TRAINING split, so the new protein's training intensities make it; they enter neither the
                      loss (its column has weight 0) nor model selection (validation averages the other proteins).
  profile_only.json   the baseline, no learned weights and no seed: each SetB probe scored by its protein's profile
                      match alone (the sum of the profile over the probe's 5-mers, common/multi.profile_scores).
Training: at most --epochs 30, early stopping on validation Spearman with --patience 5. A run whose best epoch is its
last and that did not stop early is recorded as not converged (converged: false).
Encoder: --encoder-config selected (default) reads Q2.1's selected configuration (hyperparameters, lr, batch size)
from figures/q2_1/<encoder>/metrics.json; default is the homework default (lr 1e-3, batch 64). --lr and
--batch-size override either.

Reproduce:
    python q2_3_multi_protein.py                        # simulated set: RBFOX1 + five invented motifs (sim-*)
    python q2_3_multi_protein.py --data-dir DIR --proteins RBFOX1 PUM1 QKI HNRNPA1 SRSF1
    python q2_3_multi_protein.py --quick
Add --resume after an interruption: every epoch writes runs/q2_3/seed<k>/<arm>/checkpoint.pt; finished arms keep
their metrics files as they are.

Writes figures/q2_3/seed<k>/{seen,single/<protein>,fewshot/<protein>}/metrics.json, figures/q2_3/profile_only.json,
figures/q2_3/summary.json, figures/q2_3/table.md and figures/q2_3/per_protein.png.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common.reporting.plots_q2 import plot_q2_3
from common.reporting.stats import paired_diff
from common.rna.fit import DEFAULT_COURSE_DIR, load_q2, predict, resolve_data_dir, test_report, train_rna
from common.rna.models import HOMEWORK_DEFAULT_BATCH, HOMEWORK_DEFAULT_HP, HOMEWORK_DEFAULT_LR
from common.rna.multi import K, MultiProteinModel, kmer_descriptors, profile_scores, protein_label, train_multi
from common.runfiles.files import UserError, exit_on_user_error, read_json, source_name, write_json, write_text
from common.runfiles.flags import HelpFormatter, add_common_args, parse_flags, positive_int
from common.runfiles.lifecycle import RunFiles, run_once
from common.runfiles.records import experiment_name, metrics_record
from common.training.device import seed_everything, setup_device
from common.training.loop import FitConfig, epoch_printer, stop_on_sigterm
from common.training.metrics import regression_report

REAL_PROTEINS = ["RBFOX1", "PUM1", "HNRNPA1", "QKI", "ELAVL1", "SRSF1"]   # default on the real course files
TOP_FRACTION = 0.01


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--data-dir", default=None, help="course files folder (default data/rnacompete, else the simulated set)")
    p.add_argument("--proteins", nargs="+", default=None,
                   help=f"protein names from metadata, at least 3 (default: every protein of the simulated set, or "
                        f"{' '.join(REAL_PROTEINS)} on the course files)")
    p.add_argument("--holdout", nargs="+", default=None, help="proteins to hold out in turn for few-shot (default: each one)")
    p.add_argument("--encoder", choices=["cnn", "lstm"], default="cnn", help="RNA encoder")
    p.add_argument("--encoder-config", choices=["selected", "default"], default="selected",
                   help="selected: Q2.1's selected configuration (--q2-1-dir); default: the homework default")
    p.add_argument("--q2-1-dir", default="figures/q2_1", help="where Q2.1's selected configurations are")
    p.add_argument("--patience", type=positive_int, default=5, help="early stopping: epochs without a better val Spearman")
    add_common_args(p, epochs=30, batch_size=None, lr=None, quick_epochs=2)
    args = parse_flags(p, argv)
    if args.proteins is not None and len(args.proteins) < 3:
        p.error("--proteins needs at least 3 names (two to train on while one is held out)")
    if args.holdout and args.proteins and not set(args.holdout) <= set(args.proteins):
        p.error(f"--holdout {args.holdout} must be among --proteins {args.proteins}")
    if args.seeds is None and "--seed" not in (sys.argv[1:] if argv is None else argv):
        args.seeds = [1, 2, 3]
    if args.quick:
        args.seeds = args.seeds[:1]
    return args


def encoder_config(args):
    """(hyperparameters, lr, batch size, where they come from) of the RNA encoder."""
    if args.encoder_config == "default":
        hp, lr, batch, source = dict(HOMEWORK_DEFAULT_HP[args.encoder]), HOMEWORK_DEFAULT_LR, HOMEWORK_DEFAULT_BATCH, "homework default"
    else:
        path = Path(args.q2_1_dir) / args.encoder / "metrics.json"
        if not path.is_file():
            raise UserError(f"--encoder-config selected reads Q2.1's selected {args.encoder} from {path}, which is missing: "
                            f"run `python q2_1_cnn_lstm.py --model {args.encoder}` first, or pass --encoder-config default")
        c = read_json(path)["config"]
        hp, lr, batch, source = dict(c["hp"]), c["lr"], c["batch_size"], f"Q2.1 selected ({path})"
    return hp, args.lr or lr, args.batch_size or batch, source


def default_proteins(data_dir):
    """Every protein of the simulated set, or the real default list on the course files."""
    sim = Path(data_dir) / "simulation.json"
    return list(read_json(sim)["proteins"]) if sim.is_file() else list(REAL_PROTEINS)


def per_protein_test(model, split, names):
    model.eval()
    with torch.inference_mode():
        p = predict(model, split)
    return dict(zip(names, regression_report(p, split["y"], split["y_mask"])))


def profile_only(data, profiles, names, record, experiment):
    """The baseline: SetB (and validation) Spearman of each protein's profile match alone; no weights, no seed."""
    rows = {}
    for split in ("val", "test"):
        scores = profile_scores(data[split]["x"], data[split]["valid"], profiles)
        for name, r in zip(names, regression_report(scores, data[split]["y"], data[split]["y_mask"])):
            rows.setdefault(name, {})[split] = {"spearman": r["spearman"], "pearson": r["pearson"]}
        for name, r in zip(names, regression_report(others_mean(data[split]), data[split]["y"], data[split]["y_mask"])):
            rows[name][f"{split}_others_mean"] = {"spearman": r["spearman"], "pearson": r["pearson"]}
    return {"experiment": experiment, "data": record, "k": K, "top_fraction": TOP_FRACTION,
            "others_mean_definition": others_mean.__doc__.strip(),
            "definition": kmer_descriptors.__doc__.split("\n\n")[1].strip() + " Score of a probe: "
                          + profile_scores.__doc__.splitlines()[0].split(": ", 1)[1] + " Spearman over probes with a measured "
                          "intensity (ties: average ranks, as scipy.stats.spearmanr).",
            "proteins": rows}


def others_mean(split):
    """The second baseline, also without weights: a probe scored for protein j by the mean of the OTHER proteins'
    measured targets for that probe (those present). It is what a probe's shared background alone predicts, the part
    a multi-protein model can learn from the other proteins without any profile."""
    y, m = split["y"], split["y_mask"].float()
    total, count = (y * m).sum(1, keepdim=True), m.sum(1, keepdim=True)
    return ((total - y * m) / (count - m).clamp(min=1)).masked_fill(count - m == 0, 0.0)   # (N, P)


def convergence(result):
    """Best epoch, and whether the run converged: it stopped early, or its best epoch came before its last."""
    best, n = result["best"]["epoch"], len(result["history"])
    return {"best_epoch": best, "converged": bool(result["stopped_early"]) or best < n}


def protocol(args, seed, out, runs, data, record, device, precision, experiment, enc, names, profiles):
    """Every arm of one seed; returns {arm kind: {protein: test Spearman}}."""
    P = len(names)
    hp, lr, batch, hp_source = enc
    cfg = FitConfig(epochs=args.epochs, batch_size=batch, seed=seed, select="val_spearman", precision=precision,
                    patience=args.patience)

    def log(tag):
        return epoch_printer(f"seed {seed} {tag:22s}", args.epochs, ("train_loss", "val_spearman"))

    def record_of(variant, model, result, started, extra):
        config = {**vars(args), "variant": variant, "seed": seed, "encoder_hp": hp, "lr": lr, "batch_size": batch,
                  "hp_source": hp_source, "precision": precision}
        return metrics_record(experiment, variant, config, record, device, seed, sum(p.numel() for p in model.parameters()),
                              result, started, extra=extra)

    def arm(folder, variant, train, test_of):
        """One arm through the shared run lifecycle; train(from_checkpoint) -> (model, fit result)."""
        files, state = RunFiles(out / folder / "metrics.json", runs / folder / "checkpoint.pt"), {}

        def run(from_checkpoint):
            seed_everything(seed)
            state["started"] = time.time()
            state["model"], result = train(from_checkpoint, files.checkpoint)
            return result

        def record(result, finished):
            extra = {"arm": folder, **(test_of(state["model"], result) | convergence(result) if finished else {})}
            return record_of(variant, state["model"], result, state["started"], extra)

        rec = run_once(files, resume=args.resume, force=args.force, train=run, record=record, label=f"seed {seed} {folder}")
        if not rec.get("converged", True):
            print(f"seed {seed} {folder}: NOT converged (best epoch {rec['best_epoch']} is its last of {rec['epochs_run']}); "
                  f"raise --epochs", flush=True)
        return rec

    def multi(folder, variant, train_cols, protein, extra):
        def train(from_checkpoint, ckpt):
            model = MultiProteinModel(args.encoder, hp, P, protein=protein, descriptors=profiles if protein == "profile" else None)
            return model, train_multi(model, data, train_cols, lr, cfg, device, log(folder), ckpt, from_checkpoint)

        def test_of(model, result):
            model.load_state_dict(result["best_state"])
            test = per_protein_test(model, data["test"], names)
            return {"test": test, **extra(test)}
        return arm(folder, variant, train, test_of)

    seen = multi("seen", "multi_identity", list(range(P)), "identity", lambda test: {})
    single = {}
    for j, name in enumerate(names):
        single[name] = arm(f"single/{name}", f"single_{name}",
                           lambda from_checkpoint, ckpt, j=j, name=name: train_rna(
                               args.encoder, hp, lr, data, cfg, device, col=j, on_epoch=log(f"single {name}"), ckpt=ckpt,
                               resume=from_checkpoint),
                           lambda model, result, j=j: {"test": test_report(model, result["best_state"], data["test"], col=j)})
    fewshot = {}
    for name in args.holdout or names:
        train_cols = [i for i in range(P) if names[i] != name]
        fewshot[name] = multi(f"fewshot/{name}", f"fewshot_{name}", train_cols, "profile",
                              lambda test, name=name: {"held_out": name, "train_proteins": [n for n in names if n != name],
                                                       "held_out_test": test[name]})
    records = [seen, *single.values(), *fewshot.values()]
    return {"single": {n: r["test"]["spearman"] for n, r in single.items()},
            "multi_seen": {n: seen["test"][n]["spearman"] for n in names},
            "fewshot": {n: r["held_out_test"]["spearman"] for n, r in fewshot.items()},
            "not_converged": [f"seed{seed}/{r['arm']}" for r in records if not r["converged"]],
            "epochs": {r["arm"]: {"best": r["best_epoch"], "run": r["epochs_run"], "stopped_early": r["stopped_early"]}
                       for r in records}}


def summarise(names, ids, per_seed, seeds, baseline, record, enc, args, device, experiment):
    rows = []
    for name, pid in zip(names, ids):
        row = {"protein": name, "id": pid, "label": protein_label(name, record),
               "profile_only": baseline["proteins"][name]["test"]["spearman"],
               "others_mean": baseline["proteins"][name]["test_others_mean"]["spearman"]}
        for key in ("single", "multi_seen", "fewshot"):
            vals = [r[key][name] for r in per_seed if name in r[key]]
            row[key] = float(np.mean(vals)) if vals else None
            row[key + "_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
            row[key + "_values"] = vals
        rows.append(row)
    full = [r for r in rows if r["fewshot"] is not None]
    comparisons = {}
    for label, a, b, rs in (("few-shot (own profile) − profile-only baseline", "fewshot", "profile_only", full),
                            ("few-shot (own profile) − other proteins' mean", "fewshot", "others_mean", full),
                            ("few-shot (own profile) − single-protein model", "fewshot", "single", full),
                            ("multi-protein (seen) − single-protein model", "multi_seen", "single", rows)):
        if len(rs) >= 2:
            comparisons[label] = {**paired_diff([r[a] for r in rs], [r[b] for r in rs]), "a": a, "b": b,
                                  "mean_a": float(np.mean([r[a] for r in rs])), "mean_b": float(np.mean([r[b] for r in rs])),
                                  "proteins": [r["protein"] for r in rs],
                                  "unit": f"protein (each the mean over seeds {seeds}; the baseline has no seed)"}
    hp, lr, batch, source = enc
    return {"experiment": experiment, "data": record, "encoder": args.encoder, "encoder_hp": hp, "lr": lr, "batch_size": batch,
            "encoder_source": source, "epochs": args.epochs, "patience": args.patience, "seeds": seeds, "device": device,
            "rows": rows, "comparisons": comparisons,
            "not_converged": [x for r in per_seed for x in r["not_converged"]],
            # stricter: ran to the epoch cap without early stopping (its best epoch may still be before the last)
            "ran_to_cap": [f"seed{s}/{arm}" for s, r in zip(seeds, per_seed) for arm, e in r["epochs"].items()
                           if not e["stopped_early"]],
            "best_and_run_epochs": {f"seed{s}": r["epochs"] for s, r in zip(seeds, per_seed)},
            "mean": {k: float(np.mean([r[k] for r in rows if r[k] is not None])) if any(r[k] is not None for r in rows) else None
                     for k in ("single", "multi_seen", "fewshot", "profile_only", "others_mean")}}


def table(summary, record):
    def fmt(r, k):
        return "—" if r[k] is None else f"{r[k]:.4f}" + (f" ± {r[k + '_std']:.4f}" if len(summary["seeds"]) > 1 else "")
    lines = ["| protein | id | single-protein model | multi-protein, seen (identity) | few-shot: new protein, own profile | "
             "profile-only baseline (no weights) | other proteins' mean (no weights) |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['label']} | {r['id']} | {fmt(r, 'single')} | {fmt(r, 'multi_seen')} | {fmt(r, 'fewshot')} | "
              f"{r['profile_only']:.4f} | {r['others_mean']:.4f} |" for r in summary["rows"]]
    m = summary["mean"]
    lines.append("| **mean** | | " + " | ".join("—" if m[k] is None else f"{m[k]:.4f}"
                                                   for k in ("single", "multi_seen", "fewshot", "profile_only",
                                                             "others_mean")) + " |")
    comp = [f"- {k}: {c['diff']:+.4f}" + ("" if c["ci95"] is None else f", 95% CI [{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}]")
            + f" ({c['method']}, n = {c['n']} proteins)" for k, c in summary["comparisons"].items()]
    conv = summary["not_converged"]
    caption = (f"Test Spearman on SetB, mean ± std over seeds {summary['seeds']}. Data: {source_name(record)} "
               f"({record['checksum'][:8]}){'; sim-* proteins have invented motifs' if record['source'] == 'simulated' else ''}. "
               f"Encoder {summary['encoder']} ({summary['encoder_source']}: {summary['encoder_hp']}, lr {summary['lr']:.3g}, "
               f"batch {summary['batch_size']}); at most {summary['epochs']} epochs, early stopping patience {summary['patience']}; "
               + ("every run converged (best epoch before its last, or stopped early); " if not conv else
                  f"NOT converged: {', '.join(conv)}; ")
               + (f"ran to the {summary['epochs']}-epoch cap without stopping early: {', '.join(summary['ran_to_cap'])}; "
                  if summary["ran_to_cap"] else "") + f"device {summary['device']}.\n\n")
    return caption + "\n".join(lines) + "\n\n" + "\n".join(comp) + "\n"


def main(argv=None):
    args = parse_args(argv)
    stop_on_sigterm()
    experiment = experiment_name("q2_3", args.quick)
    enc = encoder_config(args)
    data_dir = resolve_data_dir(args.data_dir or DEFAULT_COURSE_DIR, args.data_dir is not None)   # makes a missing simulated set
    names = args.proteins or default_proteins(data_dir)
    if len(names) < 3:
        raise UserError(f"the data set has {len(names)} proteins ({names}); Q2.3 needs at least 3: pass --proteins")
    if args.holdout and not set(args.holdout) <= set(names):
        raise UserError(f"--holdout {args.holdout} must be among the proteins {names}")
    device, precision = setup_device(args, cpu_bf16_pays=(args.encoder != "cnn"))   # measured, common/training/device.py
    data, record = load_q2(args, names, device, data_dir)
    names = record["proteins"]
    print(f"data: {source_name(record)} {record['path']} (md5 {record['checksum']}) proteins {dict(zip(names, record['ids']))} "
          f"sizes {record['sizes']}; device {device}, precision {precision}; encoder {args.encoder} from {enc[3]}: {enc[0]}, "
          f"lr {enc[1]:.3g}, batch {enc[2]}; at most {args.epochs} epochs, patience {args.patience}; seeds {args.seeds}")
    base, runs = Path(args.out_dir) / experiment, Path(args.run_dir) / experiment
    profiles = kmer_descriptors(data["train"], top_fraction=TOP_FRACTION)   # from the training split only
    baseline = profile_only(data, profiles, names, record, experiment)
    write_json(base / "profile_only.json", baseline)
    print("profile-only baseline (test Spearman): "
          + ", ".join(f"{n} {v['test']['spearman']:.4f}" for n, v in baseline["proteins"].items()))
    per_seed = []
    for seed in args.seeds:
        per_seed.append(protocol(args, seed, base / f"seed{seed}", runs / f"seed{seed}", data, record, device, precision,
                                 experiment, enc, names, profiles))
    summary = summarise(names, record["ids"], per_seed, args.seeds, baseline, record, enc, args, device, experiment)
    write_json(base / "summary.json", summary)
    text = table(summary, record)
    write_text(base / "table.md", text)
    print("\n" + text)
    print(f"figure: {plot_q2_3(base)}")


if __name__ == "__main__":
    exit_on_user_error(main)
