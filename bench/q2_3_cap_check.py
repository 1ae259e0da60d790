"""Compare Q2.3 records trained again with those of figures/q2_3, for the cap-sensitivity check
(bench/q2_3_cap_queue.sh).

    python bench/q2_3_cap_check.py NEW_DIR OLD_DIR ARM [ARM ...] [--out FILE] [--first N]

ARM is a record's folder under the seed, e.g. seed1/fewshot/sim-SRSF1. Each pair is compared epoch by epoch
(train loss, validation loss, validation Spearman) over the first N epochs (default: every epoch of both, and
then the two must have run the same epochs and selected the same one). The rule, fixed before the runs: a pair
agrees when its epochs and selected epoch are equal and no validation Spearman differs by more than 1e-4. With
--first N, a pair agrees when N epochs of each are within that tolerance or, where a run stopped early before
epoch N, when both ran and selected the same epochs within it (until 2026-12-02 such a pair was reported as
differing however equal it was). Exit
status 0 when every pair agrees, 1 otherwise; --out writes the comparison as JSON.
"""
import argparse
import json
import platform
import sys
from pathlib import Path

TOL = 1e-4
KEYS = ("train_loss", "val_loss", "val_spearman")


def compare(new, old, first):
    n = min(len(new["history"]), len(old["history"]))
    n = n if first is None else min(n, first)
    diff = {k: max(abs(a[k] - b[k]) for a, b in zip(new["history"][:n], old["history"][:n])) for k in KEYS}
    same_epochs = new["epochs_run"] == old["epochs_run"] and new["best_epoch"] == old["best_epoch"]
    # with --first: N epochs each, or, where a run stopped before N, the same epochs and selected epoch
    ok = diff["val_spearman"] <= TOL and (same_epochs if first is None else n == first or same_epochs)
    return {"epochs_compared": n, "largest_abs_difference": diff,
            "bitwise_equal": all(d == 0 for d in diff.values()),
            "epochs_run": [new["epochs_run"], old["epochs_run"]],
            "best_epoch": [new["best_epoch"], old["best_epoch"]],
            "devices": [new.get("device_name"), old.get("device_name")], "agrees": ok}


def by_devices(rows):
    """The verdict per pair of CPUs (new, old): pairs, agreeing, bitwise equal, and how many of the new runs
    went on past the old run's last epoch, so that a mixed result says which machines agree."""
    out = {}
    for r in rows.values():
        g = out.setdefault(" vs ".join(str(d) for d in r["devices"]),
                           {"pairs": 0, "agree": 0, "bitwise_equal": 0, "ran_longer": 0})
        g["pairs"] += 1
        g["agree"] += r["agrees"]
        g["bitwise_equal"] += r["bitwise_equal"]
        g["ran_longer"] += r["epochs_run"][0] > r["epochs_run"][1]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("new_dir")
    p.add_argument("old_dir")
    p.add_argument("arms", nargs="+")
    p.add_argument("--first", type=int, default=None, help="compare only the first N epochs")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    rows = {}
    for arm in a.arms:
        new, old = (json.loads((Path(d) / arm / "metrics.json").read_text()) for d in (a.new_dir, a.old_dir))
        rows[arm] = compare(new, old, a.first)
        r = rows[arm]
        print(f"{arm}: {'agrees' if r['agrees'] else 'DIFFERS'}; epochs {r['epochs_run']}, selected "
              f"{r['best_epoch']}, largest |difference| over {r['epochs_compared']} epochs "
              f"{ {k: f'{v:.2e}' for k, v in r['largest_abs_difference'].items()} }; devices {r['devices']}")
    result = {"rule": f"same epochs and selected epoch (unless --first), val Spearman within {TOL}",
              "first": a.first, "machine": platform.processor() or platform.machine(), "pairs": rows,
              "all_agree": all(r["agrees"] for r in rows.values()), "by_devices": by_devices(rows)}
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["all_agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
