"""CUDA graphs against eager on the Q1.1 CNN: same seed, two epochs each; losses must agree.

    python bench/cuda_graphs_check.py --out figures/gpu/cuda_graphs_check.json

Writes per-epoch training loss, validation accuracy and seconds of both modes, their largest relative loss
difference and whether it is within tolerance (fp32 with cuDNN's TF32 convolutions on both sides; the
graphed step runs the same kernels, so differences come only from algorithm choice). Without CUDA it says so
and exits 0.
"""
import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.blood.data import load_bloodmnist  # noqa: E402
from common.blood.models import BloodCNN  # noqa: E402
from common.runfiles.files import write_json  # noqa: E402
from common.runfiles.provenance import environment
from common.training.device import seed_everything  # noqa: E402
from common.training.loop import FitConfig, fit, make_adam  # noqa: E402

TOLERANCE = 1e-3   # relative, on the epoch's mean training loss


def one_mode(graphs, data, device, epochs, seed=0):
    seed_everything(seed)
    model = BloodCNN().to(device).to(memory_format=torch.channels_last)
    (xtr, ytr), (xva, yva) = data["train"], data["val"]
    xtr, xva = (x.contiguous(memory_format=torch.channels_last) for x in (xtr, xva))
    opt = make_adam(model.parameters(), 1e-3, device, capturable=graphs)
    loss_fn = nn.CrossEntropyLoss()
    cfg = FitConfig(epochs=epochs, batch_size=64, seed=seed, select="val_acc",
                    cuda_graphs="on" if graphs else "off")
    res = fit(model, opt, lambda m, idx: loss_fn(m(xtr[idx]).float(), ytr[idx]), len(ytr),
              lambda m: {"val_acc": (m(xva).argmax(1) == yva).float().mean().item()}, cfg, device)
    return [{k: h[k] for k in ("epoch", "train_loss", "val_acc", "seconds")} for h in res["history"]]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="figures/gpu/cuda_graphs_check.json")
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="a 2,048-image subset")
    args = p.parse_args()
    if not torch.cuda.is_available() or args.device not in ("auto", "cuda"):
        print("cuda graphs check skipped: no CUDA device")
        return
    torch.backends.cudnn.benchmark = True
    data, record = load_bloodmnist(device="cuda",
                                   subset={"train": 2048, "val": 512, "test": 8} if args.quick else None)
    eager, graphed = one_mode(False, data, "cuda", args.epochs), one_mode(True, data, "cuda", args.epochs)
    worst = max(abs(a["train_loss"] - b["train_loss"]) / abs(a["train_loss"]) for a, b in zip(eager, graphed))
    out = {"eager": eager, "cuda_graphs": graphed, "max_rel_loss_diff": worst, "tolerance": TOLERANCE,
           "agree": worst <= TOLERANCE, "data": record, **environment("cuda")}
    write_json(args.out, out)
    print(f"eager {[round(h['train_loss'], 5) for h in eager]} "
          f"vs graphs {[round(h['train_loss'], 5) for h in graphed]}: "
          f"max relative difference {worst:.2e} ({'agree' if out['agree'] else 'DIFFER'}); "
          f"s/epoch eager {eager[-1]['seconds']:.2f}, graphs {graphed[-1]['seconds']:.2f}")
    sys.exit(0 if out["agree"] else 1)


if __name__ == "__main__":
    main()
