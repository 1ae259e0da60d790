"""bench/gpu_protocol.py in its quick mode on CPU: budget stop, a full pass, then a pass that skips
everything.

Run: BLOODMNIST_NPZ=... python -m pytest -q tests/test_gpu_protocol.py   (uses a tiny generated npz otherwise)
"""
import json
import os
import subprocess
import sys

from conftest import ROOT


def protocol(tmp_path, npz, *extra):
    env = {**os.environ, "BLOODMNIST_NPZ": str(npz)}
    run = subprocess.run([sys.executable, "bench/gpu_protocol.py", "--quick", "--device", "cpu",
                          "--out-dir", str(tmp_path / "gpu"), "--run-dir", str(tmp_path / "runs"), *extra],
                         cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_quick_protocol_budget_full_pass_and_skip(tmp_path, blood_npz):
    out = protocol(tmp_path, blood_npz, "--budget-s", "0.01")
    assert out.count("not started (budget)") == 6                   # 4 Q1 runs + 2 Q2 steps, none started
    out = protocol(tmp_path, blood_npz, "--budget-s", "600")
    for v in ("logits", "softmax"):
        for q in ("q1_1_quick", "q1_2_quick"):
            m = json.loads((tmp_path / "gpu" / q / v / "seed0" / "metrics.json").read_text())
            assert m["status"] == "complete" and "auc" in m["test"]
    assert (tmp_path / "gpu" / "q2_2_default_quick" / "summary.json").is_file()
    assert json.loads((tmp_path / "gpu" / "q2_1_quick" / "lstm" / "metrics.json")
                      .read_text())["status"] == "complete"
    assert out.count("complete") >= 5 and "total" in out
    out = protocol(tmp_path, blood_npz, "--budget-s", "600")
    assert out.count("done before") == 6                            # nothing is run twice
