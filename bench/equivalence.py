"""Behaviour is preserved across a refactor: the same quick runs give the same metrics, and make_figures.py
gives byte-identical figures and RESULTS.md from the committed metrics.

    python bench/equivalence.py snapshot before.json     # at the old commit (e.g. from a git worktree)
    python bench/equivalence.py snapshot after.json      # at the new one
    python bench/equivalence.py compare before.json after.json

A snapshot runs every script's --quick mode (one thread, CPU, a synthetic BloodMNIST npz and a small simulated
RNAcompete set, both made from fixed seeds) into a temporary folder, and keeps every metrics.json /
summary.json / profile_only.json with times, stamps, paths and provenance removed; it also copies the
committed figures/ folder, runs make_figures.py on the copy and records the MD5 of every file it wrote.
compare prints each difference and exits 1 when there is one.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

# keys whose values change from run to run without the behaviour changing
VOLATILE = {"seconds", "train_seconds", "eval_seconds", "wall_seconds", "seconds_per_epoch_median", "written",
            "started", "code", "python", "torch_version", "threads", "device_name", "malloc_kept", "path",
            "cache", "out_dir", "run_dir", "npz", "data_dir", "q2_1_dir", "q2_1_metrics",
            "attention_recomputed", "environment", "hostname",
            # compared as "settings" (below): their split into protocol and run options changed (issue 29)
            "config", "options"}


def scrub(obj):
    """obj without its volatile keys. A record's config and options are compared as one "settings" dict
    (their union, options first): moving a value from one to the other is no difference, changing it is."""
    if isinstance(obj, dict):
        out = {k: scrub(v) for k, v in obj.items() if k not in VOLATILE and "seconds" not in k}
        if isinstance(obj.get("config"), dict) and "settings" not in obj:
            out["settings"] = scrub({**(obj.get("options") or {}), **obj["config"]})
        return out
    if isinstance(obj, list):
        return [scrub(v) for v in obj]
    return obj


def quick_runs(tmp):
    from conftest import make_blood_npz

    try:
        from common.rna.simulate import simulate
    except ImportError:   # a commit before common/ was laid out by domain (the "before" side of issue 29)
        from common.simulate_rnacompete import simulate
    npz = make_blood_npz(tmp / "blood.npz")
    sim = tmp / "sim"
    simulate(sim, seed=5, n_seta=500, n_setb=300)
    out = ["--out-dir", str(tmp / "f"), "--run-dir", str(tmp / "r"), "--device", "cpu", "--threads", "1"]
    runs = [["q1_1_cnn.py", "--npz", str(npz), "--quick", "--seeds", "0", "1", "--epochs", "1"],
            ["q1_2_maxpool.py", "--npz", str(npz), "--quick", "--epochs", "1", "--seeds", "0"],
            ["q1_softmax_study.py", "--npz", str(npz), "--quick", "--seeds", "0"],
            ["q2_1_cnn_lstm.py", "--data-dir", str(sim), "--quick"],
            ["q2_2_attention.py", "--data-dir", str(sim), "--quick"],
            ["q2_3_multi_protein.py", "--data-dir", str(sim), "--quick",
             "--proteins", "RBFOX1", "sim-QKI", "sim-PUM1"]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    for cmd in runs:
        # the study keeps no checkpoints
        flags = out if cmd[0] != "q1_softmax_study.py" else out[:2] + out[4:]
        r = subprocess.run([sys.executable, *cmd, *flags], cwd=ROOT, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed ({r.returncode}): {r.stderr[-1500:]}")
    records = {}
    for p in sorted((tmp / "f").rglob("*.json")):
        if p.name in ("metrics.json", "summary.json", "profile_only.json") or \
                p.parent.name.startswith("seed") or p.name.startswith("seed"):
            records[str(p.relative_to(tmp / "f"))] = scrub(json.loads(p.read_text()))
    return records


def figures_md5(tmp, source):
    figs = tmp / "figures"
    shutil.copytree(source, figs)
    before = {p: p.stat().st_mtime_ns for p in figs.rglob("*") if p.is_file()}
    r = subprocess.run([sys.executable, "make_figures.py", "--figures", str(figs)], cwd=ROOT,
                       capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"})
    if r.returncode not in (0, 1):   # 1: a figure's metrics are missing (named on stderr); the rest is drawn
        raise SystemExit(f"make_figures.py failed ({r.returncode}): {r.stderr[-1500:]}")
    written = [p for p in figs.rglob("*") if p.is_file() and before.get(p) != p.stat().st_mtime_ns]
    return {str(p.relative_to(figs)): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(written)}


def diff(a, b, where=""):
    if type(a) is not type(b):
        return [f"{where}: {a!r} -> {b!r}"]
    if isinstance(a, dict):
        out = [f"{where}.{k}: only {'before' if k in a else 'after'}" for k in sorted(set(a) ^ set(b))]
        return out + [d for k in sorted(set(a) & set(b)) for d in diff(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items -> {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, f"{where}[{i}]")]
    same = a == b or (isinstance(a, float) and a != a and b != b)   # NaN (an undefined AUC) equals NaN here
    return [] if same else [f"{where}: {a!r} -> {b!r}"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("snapshot",
                       help="run the quick runs and make_figures.py, write their scrubbed outputs")
    s.add_argument("out")
    s.add_argument("--figures", default=str(ROOT / "figures"),
                   help="the metrics to draw from "
                        "(give both snapshots the same folder: the committed one moves on)")
    c = sub.add_parser("compare", help="compare two snapshots; exit 1 on any difference")
    c.add_argument("before")
    c.add_argument("after")
    args = p.parse_args(argv)
    if args.cmd == "snapshot":
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            snap = {"quick_runs": quick_runs(tmp), "make_figures_md5": figures_md5(tmp, Path(args.figures))}
        Path(args.out).write_text(json.dumps(snap, indent=1, sort_keys=True))
        print(f"wrote {args.out}: {len(snap['quick_runs'])} records, "
              f"{len(snap['make_figures_md5'])} generated files")
        return
    # with the current rules
    a, b = (scrub(json.loads(Path(x).read_text())) for x in (args.before, args.after))
    out = diff(a, b)
    print("\n".join(out[:200]) or "identical: every quick-run record (times and stamps aside) and every "
                                  "generated figure")
    raise SystemExit(1 if out else 0)


if __name__ == "__main__":
    main()
