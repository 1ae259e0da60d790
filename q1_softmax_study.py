"""Q1 softmax failure study: how often does Softmax-before-CrossEntropyLoss wreck training, and why?

The homework's Q1.1 softmax variant is bimodal across seeds: some seeds predict one class from the first
epoch on and never recover (our 200-epoch seed 0: 0.189), others learn (the homework report: 68.78%). This
script measures how often each happens. For each Q1 model (Q1.1 no pooling, Q1.2 MaxPool) and each seed it
trains the softmax variant for a few epochs (collapse is decided in epoch 1), plus a logits control on the
same seeds, and classifies every run from its validation predictions after the last epoch:
    collapsed: one class gets >= 99% of the images;  partial: some class is never predicted;  healthy: else.
Counts come with a 95% Clopper-Pearson interval. Per step of every run it records the training loss and the
norm of the first conv layer's gradient: the diagnostic of why the gradients vanish.

Reproduce (homework protocol otherwise: Adam lr 1e-3, batch 64, CrossEntropyLoss):
    python q1_softmax_study.py                                  # 20 seeds x both models x softmax + logits
    python q1_softmax_study.py --models q1_2 --seeds 0 1 2     # a subset
    python q1_softmax_study.py --quick                          # smoke run on a small subset

Runs already on disk are skipped (the study resumes by run; --force redoes them). Writes
figures/q1_softmax_study/<model>/<variant>/seed<k>.json, summary.json, outcomes.png, mechanism.png and
gradients.png. Time on the 2-core CPU: about 16 s per Q1.1 epoch and 2 s per Q1.2 epoch.
"""
import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from common.blood.data import classification_report, load_bloodmnist
from common.blood.models import HOMEWORK_PROTOCOL, BloodCNN, count_params
from common.reporting.plots_study import plot_gradients, plot_mechanism, plot_outcomes
from common.reporting.study import classify_outcome, load_study, summarise_variant
from common.runfiles.files import UserError, exit_on_user_error, timestamp, write_json
from common.runfiles.flags import HelpFormatter, add_common_args, parse_flags
from common.runfiles.provenance import code_version, environment
from common.runfiles.records import experiment_name, lock_run
from common.training.device import seed_everything, setup_device
from common.training.loop import FitConfig, fit, make_adam, stop_on_sigterm

MODELS = {"q1_1": False, "q1_2": True}        # name: MaxPool after each block
STUDY_EPOCHS = {"q1_1": 2, "q1_2": 5}          # short runs: long enough that a run's class has settled
QUICK_SUBSET = {"train": 512, "val": 256, "test": 8}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS),
                   help="which Q1 models to study")
    p.add_argument("--variants", nargs="+", choices=["softmax", "logits"], default=["softmax", "logits"],
                   help="softmax: the mistake under study; logits: the control on the same seeds")
    p.add_argument("--npz", default=None,
                   help="BloodMNIST npz to use (else $BLOODMNIST_NPZ, data/bloodmnist.npz, download)")
    p.add_argument("--data-dir", default="data", help="where the downloaded npz is cached")
    add_common_args(p, epochs=None, batch_size=HOMEWORK_PROTOCOL["batch_size"], lr=HOMEWORK_PROTOCOL["lr"],
                    quick_epochs=1, checkpoints=False, seed_list="0-19 (0-2 with --quick)")
    args, opts = parse_flags(p, argv, options=("npz", "data_dir"))
    if args.seeds is None:   # --seed N: that one seed
        args.seeds = ([0, 1, 2] if args.quick else list(range(20))) if args.seed is None else [args.seed]
    return args, opts


def val_predictions(model, x, chunk=2048):
    """Predicted class of every validation image (argmax of the model's outputs, logits or probabilities)."""
    return torch.cat([model(x[s:s + chunk]).argmax(1) for s in range(0, len(x), chunk)])


def run_one(study, name, variant, seed, data, data_record):
    """Train one short run; return its record (per-epoch outcome, per-step loss and first-layer gradient
    norm). study: the call's StudyConfig (protocol, device, precision, options)."""
    device, precision = study.device, study.precision
    seed_everything(seed)
    model = BloodCNN(pool=MODELS[name],
                     softmax=(variant == "softmax")).to(device).to(memory_format=torch.channels_last)
    (xtr, ytr), (xva, yva) = data["train"], data["val"]
    optimizer = make_adam(model.parameters(), study.lr, device)
    loss_fn = nn.CrossEntropyLoss()
    step_loss, grad_norm = [], []
    # A tensor hook sees the first conv weight's gradient during backward; norms stay on the device
    # until the end.
    hook = model.features[0].weight.register_hook(lambda g: grad_norm.append(g.detach().float().norm()))

    def loss_of_batch(m, idx):
        loss = loss_fn(m(xtr[idx]).float(), ytr[idx])
        step_loss.append(loss.detach().float())
        return loss

    def evaluate(m):
        pred = val_predictions(m, xva)
        counts = torch.bincount(pred, minlength=8).tolist()
        return {"val_acc": (pred == yva).float().mean().item(), "val_pred_counts": counts,
                "val_top_class_fraction": max(counts) / len(pred), "outcome": classify_outcome(counts)}

    epochs = study.epochs or STUDY_EPOCHS[name]
    cfg = FitConfig(epochs=epochs, batch_size=study.batch_size, seed=seed, select="val_acc",
                    precision=precision)
    started = time.time()
    result = fit(model, optimizer, loss_of_batch, len(ytr), evaluate, cfg, device)
    hook.remove()
    if result["interrupted"]:   # SIGTERM: this run is short and keeps no checkpoint; it is simply not written
        return None
    model.eval()
    with torch.inference_mode():
        out = torch.cat([model(xva[s:s + 2048]).float() for s in range(0, len(xva), 2048)])
    probs = out if variant == "softmax" else out.softmax(1)
    last = result["history"][-1]
    return {"model": name, "variant": variant, "seed": seed, "epochs": epochs, "params": count_params(model),
            "outcome": last["outcome"], "val_acc": last["val_acc"], "history": result["history"],
            # confusion on validation
            "val_report": classification_report(probs.cpu().numpy(), yva.cpu().numpy()),
            "steps_per_epoch": -(-len(ytr) // study.batch_size),
            "step_loss": torch.stack(step_loss).tolist(),
            "first_layer_grad_norm": torch.stack(grad_norm).tolist(),
            "config": {"model": name, "variant": variant, "seed": seed, "epochs": epochs,
                       "batch_size": study.batch_size, "lr": study.lr, "precision": precision,
                       "quick": study.quick},
            "options": study.options, "precision": precision,
            "data": data_record, **environment(device),
            "started": timestamp(started), "wall_seconds": time.time() - started}


@dataclass(frozen=True)
class StudyConfig:
    """The study's protocol for one call (each run's record stores its own values as "config"), its device and
    precision, and the run options (stored apart, as "options")."""
    models: tuple
    variants: tuple
    seeds: tuple
    epochs: int | None      # None: STUDY_EPOCHS per model
    batch_size: int
    lr: float
    quick: bool
    device: str
    precision: str
    force: bool
    options: dict


def run_all(study, out, data, data_record):
    """Every (model, seed, variant) run not on disk yet (all of them with --force)."""
    for name in study.models:
        for seed in study.seeds:
            for variant in study.variants:
                path = out / name / variant / f"seed{seed}.json"
                if path.is_file() and not study.force:
                    continue
                rec = run_one(study, name, variant, seed, data, data_record)
                if rec is None:
                    print(f"SIGTERM: stopped during {name} {variant} seed {seed}, which is not written; the "
                          f"runs written before it are kept, and the same command runs the rest", flush=True)
                    raise SystemExit(143)
                write_json(path, rec)
                print(f"{name} {variant:7s} seed {seed:3d}: {rec['outcome']:9s} val_acc {rec['val_acc']:.4f} "
                      f"top-class fraction {rec['history'][-1]['val_top_class_fraction']:.3f} "
                      f"({rec['epochs']} epochs, {rec['wall_seconds']:.0f} s)", flush=True)


def main(argv=None):
    args, opts = parse_args(argv)
    device, precision, malloc_kept = setup_device(opts)
    stop_on_sigterm()
    data, data_record = load_bloodmnist(args.npz, args.data_dir, device, QUICK_SUBSET if args.quick else None)
    data = {s: (x.contiguous(memory_format=torch.channels_last), y) for s, (x, y) in data.items()}
    out = Path(opts.out_dir) / experiment_name("q1_softmax_study", args.quick)
    study = StudyConfig(models=tuple(args.models), variants=tuple(args.variants), seeds=tuple(args.seeds),
                        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, quick=args.quick,
                        device=device, precision=precision, force=opts.force,
                        options=opts.record(malloc_kept=malloc_kept))
    print(f"data: {data_record['source']} {data_record['path']} (md5 {data_record['checksum']}) sizes "
          f"{data_record['sizes']}; device {device}, precision {precision}; seeds {args.seeds}")
    with lock_run(out):   # a second process on this study refuses at once
        run_all(study, out, data, data_record)
    summary = summarise(out)
    for name, s in summary["models"].items():
        for variant, v in s.items():
            print(f"{name} {variant:7s} n={v['n']:3d} collapsed {v['collapsed']:3d} partial "
                  f"{v['partial']:3d} healthy {v['healthy']:3d}  P(collapse) = {v['p_collapse']:.2f} "
                  f"[95% CI {v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}]")
    for fig in (plot_outcomes(out), plot_mechanism(out), plot_gradients(out)):
        print(f"figure: {fig}")


def summarise(out):
    """summary.json: per model and variant, the outcome counts with the collapse probability's 95% CI."""
    runs = load_study(out)
    if not runs:
        raise UserError(f"no study runs under {out}; run python q1_softmax_study.py first")
    first = next(iter(next(iter(runs.values())).values()))[0]
    summary = {"experiment": Path(out).name, "data": first["data"], "device_name": first["device_name"],
               "precision": first["precision"], "code": code_version(),
               "rule": "collapsed: one class >= 99% of validation predictions; partial: a class never "
                       "predicted; healthy: otherwise (classified after the run's last epoch)",
               "models": {m: {v: summarise_variant(recs) for v, recs in sorted(vs.items(), reverse=True)}
                          for m, vs in sorted(runs.items())}}
    # the flat keys: the softmax numbers, logits as the control
    for m, vs in summary["models"].items():
        if "softmax" in vs:
            summary[m] = {**vs["softmax"], "logits_control": vs.get("logits")}
    write_json(Path(out) / "summary.json", summary)
    return summary


if __name__ == "__main__":
    exit_on_user_error(main)
