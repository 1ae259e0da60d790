"""Q2.3 — the homework's multi-protein proposal, implemented: one model for several RNA-binding proteins.

Model (common/multi.py): an RNA encoder (the Q2.1 CNN by default, or the BiLSTM) and a protein encoder,
fused by an elementwise product and a shared MLP head that predicts every protein for a probe at once;
masked MSE over all (probe, protein) pairs, selection on validation Spearman (mean over training proteins).

(a) Seen proteins: the course's probe split; one multi-protein model with a learned identity embedding per
    protein, against one single-protein model per protein (same encoder, epochs, batch and seed).
(b) Unseen proteins: leave-one-protein-out. An identity embedding cannot generalise to a protein it never
    trained on (its embedding row never receives a gradient), so here the protein is described by a
    transferable feature: the z-scored log-enrichment of 5-mers among its top 1% probes in the TRAINING
    split (SetA train part), i.e. what a motif experiment on the new protein would give. The held-out
    protein's intensities never enter the loss (its column has weight 0), nor model selection (validation
    Spearman averages the training proteins only); it is scored once, on SetB.

Reproduce:
    python q2_3_multi_protein.py                                   # simulated set: 6 proteins
    python q2_3_multi_protein.py --data-dir DIR --proteins RBFOX1 PUM1 QKI HNRNPA1 SRSF1
    python q2_3_multi_protein.py --quick

Writes figures/q2_3/{seen,single/<protein>,unseen/<protein>}/metrics.json, figures/q2_3/summary.json,
figures/q2_3/table.md and figures/q2_3/per_protein.png.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common.cli import HelpFormatter, add_common_args, seed_everything, seeds_of, setup_device
from common.experiment import experiment_name, guard_finished, lock_run, metrics_record
from common.multi import MultiProteinModel, kmer_descriptors, train_multi
from common.plots_q2 import plot_q2_3
from common.q2 import load_q2, predict, test_report, train_rna
from common.metrics import regression_report
from common.runio import UserError, exit_on_user_error, source_name, write_json, write_text
from common.train import FitConfig

ENCODER_HP = {"cnn": {"kernel": 12, "filters": 64, "hidden": 64, "dropout": 0.1},
              "lstm": {"hidden": 64, "layers": 1, "dropout": 0.1, "mlp_hidden": 64}}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--data-dir", default=None, help="course files folder (default data/rnacompete, else the simulated set)")
    p.add_argument("--proteins", nargs="+", default=["RBFOX1", "PUM1", "HNRNPA1", "QKI", "ELAVL1", "SRSF1"],
                   help="protein names from metadata (at least 3)")
    p.add_argument("--holdout", nargs="+", default=None, help="proteins to hold out in turn for (b) (default: each one)")
    p.add_argument("--encoder", choices=["cnn", "lstm"], default="cnn", help="RNA encoder")
    add_common_args(p, epochs=8, batch_size=256, lr=1e-3)
    args = p.parse_args(argv)
    if len(args.proteins) < 3:
        p.error("--proteins needs at least 3 names (two to train on while one is held out)")
    if args.holdout and not set(args.holdout) <= set(args.proteins):
        p.error(f"--holdout {args.holdout} must be among --proteins {args.proteins}")
    if args.quick and "--epochs" not in (sys.argv[1:] if argv is None else argv):
        args.epochs = 1
    return args


def per_protein_test(model, split, names):
    model.eval()
    with torch.inference_mode():
        p = predict(model, split)
    return dict(zip(names, regression_report(p, split["y"], split["y_mask"])))


def protocol(args, seed, out, data, record, device, precision, experiment):
    """(a) and (b) for one seed; returns one row per protein with the three test Spearman values."""
    names, P = args.proteins, len(args.proteins)
    cfg = FitConfig(epochs=args.epochs, batch_size=args.batch_size, seed=seed, select="val_spearman", precision=precision)
    hp = ENCODER_HP[args.encoder]

    def log(tag):
        def on_epoch(result):
            r = result["history"][-1]
            print(f"{tag:22s} epoch {r['epoch']:2d}/{args.epochs} loss {r['train_loss']:.4f} val_spearman {r['val_spearman']:.4f} "
                  f"{r['seconds']:.1f}s", flush=True)
        return on_epoch

    def save(path, variant, model, result, started, extra):
        config = {**vars(args), "variant": variant, "seed": seed, "encoder_hp": hp, "precision": precision}
        rec = metrics_record(experiment, variant, config, record, device, seed,
                             sum(p.numel() for p in model.parameters()), result, started, extra={"status": "complete", **extra})
        write_json(path / "metrics.json", rec)
        return rec

    for path in [out / "seen", *[out / "single" / n for n in names], *[out / "unseen" / n for n in (args.holdout or names)]]:
        guard_finished(path / "metrics.json", args)

    # (a) seen proteins: one identity-embedding model for all, and one single-protein model per protein
    seed_everything(seed)
    started = time.time()
    multi = MultiProteinModel(args.encoder, hp, P, protein="identity")
    result = train_multi(multi, data, list(range(P)), args.lr, cfg, device, log("multi (identity)"))
    multi.load_state_dict(result["best_state"])
    seen = save(out / "seen", "multi_identity", multi, result, started, {"test": per_protein_test(multi, data["test"], names)})
    single = {}
    for j, name in enumerate(names):
        seed_everything(seed)
        started = time.time()
        model, result = train_rna(args.encoder, hp, args.lr, data, cfg, device, col=j, on_epoch=log(f"single {name}"))
        single[name] = save(out / "single" / name, f"single_{name}", model, result, started,
                            {"test": test_report(model, result["best_state"], data["test"], col=j)})

    # (b) unseen proteins: leave one out, k-mer descriptors from the training split only
    descriptors = kmer_descriptors(data["train"])
    unseen = {}
    for name in args.holdout or names:
        j = names.index(name)
        train_cols = [i for i in range(P) if i != j]
        seed_everything(seed)
        started = time.time()
        model = MultiProteinModel(args.encoder, hp, P, protein="kmer", descriptors=descriptors)
        result = train_multi(model, data, train_cols, args.lr, cfg, device, log(f"held-out {name}"))
        model.load_state_dict(result["best_state"])
        test = per_protein_test(model, data["test"], names)
        unseen[name] = save(out / "unseen" / name, f"unseen_{name}", model, result, started,
                            {"held_out": name, "train_proteins": [names[i] for i in train_cols], "test": test,
                             "held_out_test": test[name]})

    return [{"single": single[n]["test"]["spearman"], "multi_seen": seen["test"][n]["spearman"],
             "multi_unseen": unseen[n]["held_out_test"]["spearman"] if n in unseen else None} for n in names]


def main(argv=None):
    args = parse_args(argv)
    if args.resume:   # it used to switch off the finished-run guard only, and so retrained over finished records
        raise UserError("--resume: Q2.3 keeps no checkpoints, so there is nothing to continue; finished runs are kept "
                        "(rerun without --resume: a finished run refuses unless --force), or use --out-dir to write elsewhere")
    experiment = experiment_name("q2_3", args.quick)
    device, precision = setup_device(args, cpu_bf16_pays=(args.encoder != "cnn"))   # measured, common/cli.py
    data, record = load_q2(args, args.proteins, device)
    names = args.proteins
    print(f"data: {source_name(record)} {record['path']} (md5 {record['checksum']}) proteins {dict(zip(names, record['ids']))} "
          f"sizes {record['sizes']}; device {device}, precision {precision}, encoder {args.encoder}")
    base = Path(args.out_dir) / experiment
    seeds = seeds_of(args)
    per_seed = []
    for seed in seeds:
        out = base / f"seed{seed}" if args.seeds else base
        with lock_run(out):   # a second process on this run refuses at once
            per_seed.append(protocol(args, seed, out, data, record, device, precision, experiment))
    rows = []
    for j, name in enumerate(names):
        row = {"protein": name, "id": record["ids"][j]}
        for key in ("single", "multi_seen", "multi_unseen"):
            vals = [r[j][key] for r in per_seed if r[j][key] is not None]
            row[key] = float(np.mean(vals)) if vals else None
            row[key + "_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        rows.append(row)
    out = base
    summary = {"experiment": experiment, "data": record, "encoder": args.encoder, "epochs": args.epochs, "seeds": seeds,
               "device": device, "rows": rows,
               "mean": {k: float(np.mean([r[k] for r in rows if r[k] is not None])) for k in ("single", "multi_seen", "multi_unseen")}}
    write_json(out / "summary.json", summary)
    def fmt(v, sd=None):
        return "—" if v is None else f"{v:.4f}" + (f" ± {sd:.4f}" if sd is not None and len(seeds) > 1 else "")

    table = ["| protein | id | single-protein model | multi-protein, seen (identity) | multi-protein, held out (k-mer descriptor) |",
             "|---|---|---|---|---|"] + [f"| {r['protein']} | {r['id']} | {fmt(r['single'], r['single_std'])} | "
                                         f"{fmt(r['multi_seen'], r['multi_seen_std'])} | {fmt(r['multi_unseen'], r['multi_unseen_std'])} |"
                                         for r in rows]
    table.append(f"| **mean** | | {fmt(summary['mean']['single'])} | {fmt(summary['mean']['multi_seen'])} | {fmt(summary['mean']['multi_unseen'])} |")
    caption = (f"Test Spearman on SetB. Data: {source_name(record)} ({record['checksum'][:8]}); encoder {args.encoder}; "
               f"{args.epochs} epochs; seeds {seeds} (mean ± std over seeds when several); device {device}.\n\n")
    write_text(out / "table.md", caption + "\n".join(table) + "\n")
    print("\n" + "\n".join(table))
    print(f"figure: {plot_q2_3(out)}")


if __name__ == "__main__":
    exit_on_user_error(main)
