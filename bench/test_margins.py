"""Measure the statistics that the float-dependent tests (pytest marker `cpu_float`) assert on, under this
process's torch CPU kernels, so that each threshold can be set with a stated margin below the worst value
seen.

    for c in default avx2 avx512; do
        ATEN_CPU_CAPABILITY=$c python bench/test_margins.py --json figures/bench/margins_$c.json; done

Each test's statistic is computed exactly as the test computes it, for several seeds (the test itself uses
seed 0):
- cnn_tiny_batch (tests/test_q1.py): training accuracy and final loss of the MaxPool CNN after 60 Adam steps;
- lstm_tiny_motif (tests/test_q2.py): Spearman of the BiLSTM's fit to "count of GC" after its training steps;
- tolerance tests (padding invariance, packed-LSTM and Conv1d equivalences): the max absolute difference.
"""
import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import test_q1  # noqa: E402  -- the tests' own functions: the statistics are computed exactly as the tests do
import test_q2  # noqa: E402

from common.rna.format import encode, one_hot  # noqa: E402
from common.rna.models import RNACNN, RNALSTM  # noqa: E402


def cnn_tiny_batch(seed):
    acc, loss = test_q1.cnn_tiny_batch(seed)
    return {"acc": acc, "loss": loss}


def lstm_tiny_motif(seed):
    return {"spearman": test_q2.lstm_tiny_motif_spearman(seed)}


def tolerance_diffs():
    """Max |difference| of the tolerance-based equivalence tests (their models at torch's default init,
    seed 0)."""
    torch.manual_seed(0)
    out = {}
    codes, valid = encode(["ACGUACGUGCAUGUACGUACGUACGUACGUACGUACGUA", "GCAUG" * 8, "UUUU" * 10])
    x = one_hot(codes)
    longer = (torch.cat([x, torch.zeros(3, 7, 4)], 1),
              torch.cat([valid, torch.zeros(3, 7, dtype=torch.bool)], 1))
    for name, model in (("cnn", RNACNN()), ("lstm", RNALSTM()), ("lstm2", RNALSTM(layers=2)),
                        ("attn3", RNALSTM(attention_heads=3))):
        model.eval()
        with torch.no_grad():
            out[f"padding_{name}"] = max(float((model(x, valid) - model(*longer)).abs().max()),
                                         float((model(x[:1], valid[:1])
                                                - model(x[:1, :39], valid[:1, :39])).abs().max()))
    ours, packed = test_q2.packed_lstm_pair()
    out["packed_lstm"] = float((ours - packed).abs().max())
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds per learning test")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    res = {"capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
           "cnn_tiny_batch": {s: cnn_tiny_batch(s) for s in args.seeds},
           "lstm_tiny_motif": {s: lstm_tiny_motif(s) for s in args.seeds}, "tolerances": tolerance_diffs()}
    c, lstm = res["cnn_tiny_batch"], res["lstm_tiny_motif"]
    per_seed = ", ".join(f"{s}: {v['spearman']:.4f}" for s, v in lstm.items())
    tol = ", ".join(f"{k} {v:.2e}" for k, v in res["tolerances"].items())
    print(f"{res['capability']}: cnn acc min {min(v['acc'] for v in c.values()):.4f} "
          f"loss max {max(v['loss'] for v in c.values()):.4f}; lstm spearman min "
          f"{min(v['spearman'] for v in lstm.values()):.4f} ({per_seed}); {tol}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
