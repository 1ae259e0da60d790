"""Q1.1 — BloodMNIST with a plain 3-block CNN (no pooling), trained on logits and on softmax outputs.

Homework protocol (the defaults): Adam lr 1e-3, CrossEntropyLoss, batch 64, 200 epochs, inputs
normalised as ToTensor + Normalize(0.5, 0.5), no augmentation. The `softmax` variant puts nn.Softmax(dim=1)
before the same CrossEntropyLoss, the classic mistake (the loss then sees probabilities as logits,
its gradients shrink, and training stalls or collapses depending on the seed).

Reproduce:
    python q1_1_cnn.py                                  # both variants, 200 epochs, seed 0
    python q1_1_cnn.py --seeds 0 1 2                    # mean ± std over three seeds
    python q1_1_cnn.py --quick                          # smoke run: 2 epochs on a small subset
    BLOODMNIST_NPZ=../shared/data/bloodmnist_pbc.npz python q1_1_cnn.py   # offline copy of the data

Writes figures/q1_1/<variant>/metrics.json (per-epoch train loss, val/test accuracy, seconds; the test
accuracy of the best-validation epoch; data source and MD5) and figures/q1_1/curves.png.
Checkpoints for --resume go to runs/q1_1/<variant>/checkpoint.pt.

Expected result (README results table): logits reaches ~0.956-0.961 test accuracy at the best validation
epoch (CPU bf16 / H100 fp32, seed 0); the softmax variant is seed-dependent: seed 0 collapses to one class
(0.189). 25,785,672 parameters. Time: ~53 min per variant on a 2-core Zen 5 CPU (15.8 s/epoch),
80 s on an H100.
"""
import argparse
import time
from dataclasses import dataclass, replace

import torch
from torch import nn

from common.blood.data import classification_report, load_bloodmnist
from common.blood.models import HOMEWORK_PROTOCOL, BloodCNN, count_params
from common.reporting.plots import plot_q1_curves
from common.runfiles.files import UserError, exit_on_user_error, write_json
from common.runfiles.flags import HelpFormatter, add_common_args, parse_flags, seeds_of
from common.runfiles.lifecycle import RunContext, RunFiles, run_once
from common.runfiles.records import (
    experiment_name,
    metrics_record,
    run_dirs,
    write_aggregate,
)
from common.training.device import seed_everything, setup_device
from common.training.loop import FitConfig, autocast, epoch_printer, fit, make_adam, stop_on_sigterm

QUICK_SUBSET = {"train": 512, "val": 256, "test": 256}
AGG_KEYS = ["test.acc", "test.auc", "best.val_acc", "final.test_acc", "train_seconds"]


def parse_args(argv, description):
    p = argparse.ArgumentParser(description=description.split("\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--variant", choices=["logits", "softmax", "both"], default="both",
                   help="logits: CrossEntropyLoss on raw outputs; "
                        "softmax: nn.Softmax before it (the mistake)")
    p.add_argument("--npz", default=None,
                   help="BloodMNIST npz to use (else $BLOODMNIST_NPZ, data/bloodmnist.npz, download)")
    p.add_argument("--data-dir", default="data", help="where the downloaded npz is cached")
    p.add_argument("--cuda-graphs", choices=["auto", "on", "off"], default="auto",
                   help="replay each full training step (forward, backward, Adam) as one CUDA graph; "
                        "auto = on for CUDA")
    p.add_argument("--stop-at", type=float, default=0.0,
                   help="wall-clock time (seconds since 1970) after which to stop at the end of an epoch, "
                        "with a checkpoint; --resume continues (used by bench/gpu_protocol.py to keep within "
                        "a time budget)")
    add_common_args(p, **HOMEWORK_PROTOCOL, quick_epochs=2, checkpoint_every=True, channels_last=True)
    return parse_flags(p, argv, options=("npz", "data_dir", "stop_at"))


@dataclass(frozen=True)
class Q1Config:
    """The protocol values of one Q1 run: what its record stores as "config" (run options are stored
    apart)."""
    variant: str            # logits | softmax
    seed: int
    pool: bool              # Q1.2: MaxPool2d(2) after each block
    epochs: int
    batch_size: int
    lr: float
    precision: str          # resolved: fp32 or bf16
    channels_last: bool
    cuda_graphs: str        # resolved: off, auto (guarded) or on
    quick: bool
    optimizer: str = "Adam"
    fused_adam: bool | None = None


def accuracy_and_loss(model, x, y, chunk=2048, n_classes=8):
    """Accuracy, mean CrossEntropyLoss of model's outputs (as trained: logits or probabilities) and the number
    of images predicted as each class (the softmax study's rule classifies a run from these, at any epoch)."""
    correct, loss, counts = 0, 0.0, torch.zeros(n_classes, dtype=torch.long, device=x.device)
    for s in range(0, len(x), chunk):
        out = model(x[s:s + chunk]).float()
        pred = out.argmax(1)
        correct += (pred == y[s:s + chunk]).sum()
        counts += torch.bincount(pred, minlength=n_classes)
        loss += nn.functional.cross_entropy(out, y[s:s + chunk], reduction="sum")
    return {"acc": (correct / len(x)).item(), "loss": (loss / len(x)).item(), "pred_counts": counts.tolist()}


def class_probabilities(model, x, softmax_in_model, chunk=2048):
    """(N, 8) class probabilities: the model's own outputs for the softmax variant, softmax(logits)
    otherwise."""
    out = torch.cat([model(x[s:s + chunk]).float() for s in range(0, len(x), chunk)])
    return out if softmax_in_model else out.softmax(1)


def selected_test_report(model, best_state, x, y, softmax_in_model, device, precision):
    """MedMNIST ACC/AUC and confusion matrix of the selected (best-validation) checkpoint on the test set."""
    model.load_state_dict(best_state)
    model.eval()
    with torch.inference_mode(), autocast(device, precision):
        probs = class_probabilities(model, x, softmax_in_model)
    model.train()
    return classification_report(probs.cpu().numpy(), y.cpu().numpy())


def use_cuda_graphs(flag, device):
    """--cuda-graphs -> fit()'s mode: auto = guarded on CUDA devices (eager on any capture error or a
    first-step mismatch, with one line), off elsewhere; on = strict, and a user error off CUDA."""
    is_cuda = str(device).startswith("cuda")
    if flag == "on" and not is_cuda:
        raise UserError(f"--cuda-graphs on needs a CUDA device (this run uses {device}); use --cuda-graphs "
                        f"auto or off")
    return "off" if flag == "off" or not is_cuda else flag


def train_variant(cfg_run, setup, multi_seed):
    """One seed of one variant (cfg_run: its Q1Config) through the shared run lifecycle -> its finished record
    (or None at a deadline)."""
    variant, seed, device, opts = cfg_run.variant, cfg_run.seed, setup.device, setup.opts
    metrics_dir, ckpt = run_dirs(opts.out_dir, opts.run_dir, setup.experiment, variant, seed, multi_seed)
    files = RunFiles(metrics_dir / "metrics.json", ckpt)
    mf = torch.channels_last if cfg_run.channels_last else torch.contiguous_format
    (xtr, ytr), (xva, yva), (xte, yte) = (setup.data[s] for s in ("train", "val", "test"))
    xtr, xva, xte = (x.contiguous(memory_format=mf) for x in (xtr, xva, xte))
    loss_fn = nn.CrossEntropyLoss()
    cfg = FitConfig(epochs=cfg_run.epochs, batch_size=cfg_run.batch_size, seed=seed, select="val_acc",
                    precision=cfg_run.precision, cuda_graphs=cfg_run.cuda_graphs,
                    stop_at=opts.extra["stop_at"])
    state = {}

    def loss_of_batch(m, idx):
        return loss_fn(m(xtr[idx]).float(), ytr[idx])

    def evaluate(m):
        va, te = accuracy_and_loss(m, xva, yva), accuracy_and_loss(m, xte, yte)
        return {"val_loss": va["loss"], "val_acc": va["acc"], "test_acc": te["acc"],
                "val_pred_counts": va["pred_counts"]}

    def record(result, finished=False):
        h, b = result["history"], result["best"]
        rec = metrics_record(setup.experiment, variant, config=state["config"], options=setup.options,
                             data=setup.data_record, device=device, seed=seed, params=state["params"],
                             result=result, started=state["started"], extra={
                                 # best-val epoch
                                 "test": {"acc": h[b["epoch"] - 1]["test_acc"], "epoch": b["epoch"]},
                                 "final": {"test_acc": h[-1]["test_acc"], "val_acc": h[-1]["val_acc"],
                                           "epoch": h[-1]["epoch"]},
                                 "cuda_graphs_used": result.get("cuda_graphs_used", False),
                                 "cuda_graphs_fallback": result.get("cuda_graphs_fallback")})
        # test once, for the selected checkpoint: MedMNIST's ACC and AUC and the confusion matrix
        if finished:
            rec["test"].update(selected_test_report(state["model"], result["best_state"], xte, yte,
                                                    variant == "softmax", device, cfg_run.precision))
        return rec

    printer = epoch_printer(f"{setup.experiment} {variant:7s} seed {seed}", cfg.epochs,
                            ("train_loss", "val_acc", "test_acc"))

    def on_epoch(result):
        printer(result)
        write_json(files.metrics, record(result))   # status "running", so a long run can be followed

    def train(from_checkpoint):
        seed_everything(seed)
        model = BloodCNN(pool=cfg_run.pool, softmax=(variant == "softmax")).to(device).to(memory_format=mf)
        optimizer = make_adam(model.parameters(), cfg_run.lr, device, capturable=cfg_run.cuda_graphs != "off")
        state.update(model=model, started=time.time(), params=count_params(model), config=replace(
            cfg_run, optimizer=type(optimizer).__name__, fused_adam=optimizer.defaults.get("fused")))
        return fit(model, optimizer, loss_of_batch, len(ytr), evaluate, cfg, device,
                   ckpt_path=files.checkpoint, resume=from_checkpoint, on_epoch=on_epoch,
                   ckpt_every=opts.checkpoint_every)

    return run_once(files, resume=opts.resume, force=opts.force, train=train, record=record,
                    label=f"{setup.experiment} {variant} seed {seed}")


def main(argv=None, pool=False, base="q1_1", description=__doc__):
    args, opts = parse_args(argv, description)
    experiment = experiment_name(base, args.quick)
    device, precision, malloc_kept = setup_device(opts)
    stop_on_sigterm()
    torch.backends.cudnn.benchmark = True   # fixed input shapes: let cuDNN pick the fastest conv kernels
    data, data_record = load_bloodmnist(args.npz, args.data_dir, device, QUICK_SUBSET if args.quick else None)
    setup = RunContext(experiment, data, data_record, device, opts,
                       options=opts.record(malloc_kept=malloc_kept))
    # --seeds: per-seed folders plus an aggregate over every finished seed there
    multi_seed = args.seeds is not None
    channels_last = opts.channels_last != "off"
    print(f"data: {data_record['source']} {data_record['path']} (md5 {data_record['checksum']}, found by "
          f"{data_record['found_by']}) sizes {data_record['sizes']}; device {device}, precision {precision}, "
          f"channels_last {channels_last}")
    variants = ["logits", "softmax"] if args.variant == "both" else [args.variant]
    summary = []
    for variant in variants:
        for s in seeds_of(args.seed, args.seeds):
            cfg_run = Q1Config(variant=variant, seed=s, pool=pool, epochs=args.epochs,
                               batch_size=args.batch_size, lr=args.lr, precision=precision,
                               channels_last=channels_last,
                               cuda_graphs=use_cuda_graphs(args.cuda_graphs, device), quick=args.quick)
            rec = train_variant(cfg_run, setup, multi_seed)
            if rec is None:   # stopped at --stop-at: no more runs in this call
                return opts, experiment
            summary.append(rec)
        if multi_seed:
            write_aggregate(f"{opts.out_dir}/{experiment}/{variant}", AGG_KEYS)
    print(f"\n{'variant':8s} {'seed':>4s} {'params':>11s} {'best ep':>7s} {'val acc':>7s} {'test acc':>8s} "
          f"{'final test':>10s} {'train s':>8s}")
    for r in summary:
        print(f"{r['variant']:8s} {r['seed']:4d} {r['params']:11,d} {r['best']['epoch']:7d} "
              f"{r['best']['val_acc']:7.4f} {r['test']['acc']:8.4f} {r['final']['test_acc']:10.4f} "
              f"{r['train_seconds']:8.1f}")
    path = plot_q1_curves(f"{opts.out_dir}/{experiment}",
                          title=f"Q1.{2 if pool else 1} CNN{' + MaxPool' if pool else ''}")
    print(f"figure: {path}")
    return opts, experiment


if __name__ == "__main__":
    exit_on_user_error(main)
