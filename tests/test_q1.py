"""Q1 tests: model sizes and shapes, the npz loader and its errors, determinism, resume, learning, CLI.

Run: python -m pytest -q tests/test_q1.py
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, make_blood_npz

from common.blood.data import OFFICIAL_MD5, ZENODO_URL, load_bloodmnist, load_npz, resolve_npz
from common.blood.models import BloodCNN, count_params
from common.runfiles.files import UserError, timestamp


def test_parameter_counts_match_the_homework():
    assert count_params(BloodCNN(pool=False)) == 25_785_672
    assert count_params(BloodCNN(pool=True)) == 390_472
    assert count_params(BloodCNN(pool=True, softmax=True)) == 390_472   # softmax adds no parameters


@pytest.mark.parametrize("pool", [False, True])
def test_output_shape_and_softmax_sums_to_one(pool):
    x = torch.randn(5, 3, 28, 28)
    logits = BloodCNN(pool=pool)(x)
    probs = BloodCNN(pool=pool, softmax=True)(x)
    assert logits.shape == probs.shape == (5, 8)
    torch.testing.assert_close(probs.sum(1), torch.ones(5))
    assert (probs >= 0).all()
    assert not torch.allclose(logits.sum(1), torch.ones(5))   # logits are not normalised


def test_maxpool_feature_map_is_3x3():
    assert BloodCNN(pool=True).features(torch.zeros(1, 3, 28, 28)).shape == (1, 128, 3, 3)
    assert BloodCNN(pool=False).features(torch.zeros(1, 3, 28, 28)).shape == (1, 128, 28, 28)


def test_loader_normalises_to_minus_one_one(tmp_path):
    x = np.zeros((2, 28, 28, 3), np.uint8)
    x[1] = 255
    x[0, 0, 0] = [0, 51, 102]
    y = np.array([[0], [7]], np.uint8)
    path = make_blood_npz(tmp_path / "t.npz", train_images=x, train_labels=y)
    data, record = load_bloodmnist(npz=path)
    xt, yt = data["train"]
    assert xt.shape == (2, 3, 28, 28) and xt.dtype == torch.float32
    assert yt.tolist() == [0, 7] and yt.dtype == torch.int64
    torch.testing.assert_close(xt[0, :, 0, 0], torch.tensor([-1.0, 51 / 255 * 2 - 1, 102 / 255 * 2 - 1]))
    assert xt[1].eq(1).all()
    assert record["sizes"] == {"train": 2, "val": 32, "test": 32}
    assert record["source"] == "bloodmnist-other" and len(record["checksum"]) == 32


@pytest.mark.parametrize("override, message", [
    ({"val_labels": None}, "lacks key 'val_labels'"),
    ({"train_images": np.zeros((4, 32, 32, 3), np.uint8)}, "expected uint8 (N, 28, 28, 3)"),
    ({"train_images": np.zeros((4, 28, 28, 3), np.float32)}, "expected uint8 (N, 28, 28, 3)"),
    ({"test_labels": np.full((32, 1), 8, np.uint8)}, "expected 0..7"),
    ({"train_labels": np.zeros((5, 1), np.uint8)}, "has 5 labels for 96 images"),
])
def test_bad_npz_gets_a_clear_error(tmp_path, override, message):
    path = make_blood_npz(tmp_path / "bad.npz", **override)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        load_npz(path)
    assert str(path) in str(e.value)


def test_not_an_npz(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("hello")
    with pytest.raises(UserError, match="not a readable npz"):
        load_npz(path)


def test_missing_data_names_url_md5_path_and_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("BLOODMNIST_NPZ", raising=False)
    with pytest.raises(UserError) as e:
        resolve_npz(None, tmp_path / "data", download=False)
    msg = str(e.value)
    for part in (ZENODO_URL, OFFICIAL_MD5, str(tmp_path / "data" / "bloodmnist.npz"), "BLOODMNIST_NPZ"):
        assert part in msg


def test_source_order(tmp_path, monkeypatch, blood_npz):
    other = make_blood_npz(tmp_path / "other.npz", seed=1)
    monkeypatch.setenv("BLOODMNIST_NPZ", str(other))
    assert resolve_npz(blood_npz)[1] == "--npz"
    assert resolve_npz(None)[0] == other
    monkeypatch.setenv("BLOODMNIST_NPZ", str(tmp_path / "nope.npz"))
    with pytest.raises(UserError, match="no such file"):
        resolve_npz(None)


def run_q1(blood_npz, out, *extra, script="q1_2_maxpool.py"):
    from importlib import import_module
    module = import_module(script[:-3])
    argv = ["--npz", str(blood_npz), "--out-dir", str(out / "fig"), "--run-dir", str(out / "runs"),
            "--quick", "--variant", "logits", "--device", "cpu", *extra]
    module.main(argv)
    exp = "q1_2_quick" if script.startswith("q1_2") else "q1_1_quick"
    return json.loads((out / "fig" / exp / "logits" / "metrics.json").read_text())


def strip_times(history):
    return [{k: v for k, v in h.items() if "seconds" not in k} for h in history]


def test_same_seed_same_metrics(tmp_path, blood_npz):
    a = run_q1(blood_npz, tmp_path / "a", "--epochs", "2")
    b = run_q1(blood_npz, tmp_path / "b", "--epochs", "2")
    c = run_q1(blood_npz, tmp_path / "c", "--epochs", "2", "--seed", "1")
    assert strip_times(a["history"]) == strip_times(b["history"])
    assert strip_times(a["history"]) != strip_times(c["history"])


def test_timestamps_are_iso_8601_and_round_trip():
    from datetime import datetime
    t = 1_790_000_000.0   # 2026-09-21, whole seconds
    # the offset is written (a UTC host can't tell otherwise)
    assert datetime.fromisoformat(timestamp(t)).tzinfo is not None
    # the offset is kept, so the instant is exact
    assert datetime.fromisoformat(timestamp(t)).timestamp() == t
    assert datetime.fromisoformat(timestamp()).timestamp() > t     # default: now


def test_resume_matches_an_uninterrupted_run(tmp_path, blood_npz):
    full = run_q1(blood_npz, tmp_path / "full", "--epochs", "3")
    run_q1(blood_npz, tmp_path / "part", "--epochs", "2")
    resumed = run_q1(blood_npz, tmp_path / "part", "--epochs", "3", "--resume")
    assert strip_times(resumed["history"]) == strip_times(full["history"])
    assert resumed["test"] == full["test"] and resumed["status"] == "complete"
    # provenance: the resumed record says so (its wall_seconds cover epoch 3 only); started precedes written
    assert resumed["resumed_after_epoch"] == 2 and "resumed_after_epoch" not in full
    assert all(r["started"] <= r["written"] for r in (full, resumed))


def test_resume_of_a_finished_run_keeps_its_metrics_file(tmp_path, blood_npz):
    run_q1(blood_npz, tmp_path, "--epochs", "2")
    path = tmp_path / "fig" / "q1_2_quick" / "logits" / "metrics.json"
    before = path.read_bytes()
    again = run_q1(blood_npz, tmp_path, "--epochs", "2", "--resume")
    assert path.read_bytes() == before and again["status"] == "complete" and "auc" in again["test"]


def test_metrics_file_has_the_promised_keys(tmp_path, blood_npz):
    m = run_q1(blood_npz, tmp_path, "--epochs", "1")
    for key in ("experiment", "variant", "config", "data", "device", "torch_version", "seed", "params",
                "started", "written", "wall_seconds", "train_seconds", "history", "best", "test", "final"):
        assert key in m
    assert set(m["data"]) >= {"source", "path", "checksum"}   # the key Q2 records use too
    assert set(m["history"][0]) >= {"epoch", "train_loss", "val_acc", "test_acc", "seconds"}
    assert m["test"]["acc"] == m["history"][m["best"]["epoch"] - 1]["test_acc"]
    assert m["config"]["quick"] is True and m["experiment"] == "q1_2_quick"
    # run options: apart
    assert not {"out_dir", "run_dir", "resume", "force", "note", "npz"} & set(m["config"])
    assert m["options"]["quick"] is True and m["options"]["out_dir"] == str(tmp_path / "fig")
    assert (tmp_path / "fig" / "q1_2_quick" / "curves.png").stat().st_size > 10_000
    # MedMNIST's metrics for the selected checkpoint: its ACC equals our test accuracy of the best epoch
    assert m["test"]["acc_medmnist"] == pytest.approx(m["test"]["acc"], abs=1e-6)
    assert 0.0 <= m["test"]["auc"] <= 1.0 and np.asarray(m["test"]["confusion"]).sum() == 32
    # no absolute machine paths or host names in committed results
    assert "host" not in m and not Path(m["data"]["path"]).is_absolute()


def test_finished_run_is_not_overwritten(tmp_path, blood_npz):
    run_q1(blood_npz, tmp_path, "--epochs", "1")
    with pytest.raises(UserError, match="already holds a finished run"):
        run_q1(blood_npz, tmp_path, "--epochs", "1")
    run_q1(blood_npz, tmp_path, "--epochs", "1", "--force")


def cnn_tiny_batch(seed):
    """(training accuracy, last loss) of the MaxPool CNN after 60 Adam steps on one random batch of 32
    images."""
    torch.manual_seed(seed)
    x, y = torch.randn(32, 3, 28, 28), torch.arange(32) % 8
    model = BloodCNN(pool=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean()), float(loss)


@pytest.mark.cpu_float
def test_cnn_learns_a_tiny_batch():
    acc, loss = cnn_tiny_batch(0)
    # Measured (bench/test_margins.py, seeds 0-7, default / avx2 / avx512): accuracy 1.0, final loss <= 0.0002
    # on every run, so 0.05 leaves a 250x margin.
    assert acc == 1.0 and loss < 0.05


def cli(*args, env=None):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=300)


def test_script_smoke_runs_and_errors(tmp_path, blood_npz):
    out = ["--out-dir", str(tmp_path / "f"), "--run-dir", str(tmp_path / "r"), "--device", "cpu"]
    ok = cli("q1_1_cnn.py", "--npz", str(blood_npz), "--quick", "--epochs", "1", *out)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "f" / "q1_1_quick" / "softmax" / "metrics.json").is_file()
    ok = cli("q1_2_maxpool.py", "--npz", str(blood_npz), "--quick", "--epochs", "1", *out)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "f" / "q1_2_quick" / "comparison.png").is_file()
    bad = cli("q1_1_cnn.py", "--epochs", "0")
    assert bad.returncode == 2 and "must be a positive integer" in bad.stderr
    bad = cli("q1_2_maxpool.py", "--lr", "-1")
    assert bad.returncode == 2 and "must be a positive number" in bad.stderr
    bad = cli("q1_2_maxpool.py", "--npz", str(tmp_path / "missing.npz"), *out)
    assert bad.returncode == 2 and bad.stderr.strip() == (f"error: --npz {tmp_path / 'missing.npz'}: "
                                                          "no such file")
    assert "Traceback" not in bad.stderr


@pytest.mark.skipif(not __import__("os").environ.get("BLOODMNIST_NPZ"), reason="BLOODMNIST_NPZ not set")
def test_the_configured_bloodmnist_file_is_valid():
    data, record = load_bloodmnist()
    assert record["sizes"]["train"] > 10_000 and record["source"] != "bloodmnist-other"
    assert set(data["train"][1].unique().tolist()) == set(range(8))


def test_cuda_graphs_flag_on_cpu():
    from common.training.loop import graphed_step
    from q1_1_cnn import use_cuda_graphs
    assert use_cuda_graphs("auto", "cpu") == "off" and use_cuda_graphs("off", "cuda") == "off"
    assert use_cuda_graphs("auto", "cuda") == "auto" and use_cuda_graphs("on", "cuda") == "on"
    with pytest.raises(UserError, match="--cuda-graphs on needs a CUDA device"):
        use_cuda_graphs("on", "cpu")
    with pytest.raises(UserError, match="CUDA graphs need a CUDA device"):
        graphed_step(BloodCNN(pool=True), None, None, 64, "cpu", "fp32")


def tiny_fit(cuda_graphs, capsys=None):
    """Two epochs of the pooled CNN on 200 random images with fit(): (history without times, final
    weights)."""
    from common.training.loop import FitConfig, fit, make_adam
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 3, 28, 28, generator=g), torch.randint(0, 8, (200,), generator=g)
    torch.manual_seed(0)
    model = BloodCNN(pool=True)
    opt = make_adam(model.parameters(), 1e-3, "cpu")
    loss_fn = torch.nn.CrossEntropyLoss()
    cfg = FitConfig(epochs=2, batch_size=64, seed=0, select="val_acc", cuda_graphs=cuda_graphs)
    res = fit(model, opt, lambda m, idx: loss_fn(m(x[idx]), y[idx]), 200,
              lambda m: {"val_acc": (m(x).argmax(1) == y).float().mean().item()}, cfg, "cpu")
    drop = ("seconds", "train_seconds", "eval_seconds")
    return [{k: v for k, v in h.items() if k not in drop} for h in res["history"]], model.state_dict(), res


def test_cuda_graphs_auto_falls_back_to_eager_when_capture_fails(capsys):
    """--cuda-graphs auto can never do worse than eager: here capture fails (no CUDA device), and the run goes
    on eagerly, bit for bit the eager run, after one line that says so. --cuda-graphs on stays strict."""
    eager, w_eager, _ = tiny_fit("off")
    capsys.readouterr()
    auto, w_auto, res = tiny_fit("auto")
    err = capsys.readouterr().err.strip().splitlines()
    assert auto == eager and all(torch.equal(w_eager[k], w_auto[k]) for k in w_eager)
    assert len(err) == 1 and err[0].startswith("cuda graphs: falling back to eager "
                                               "(UserError: CUDA graphs need a CUDA")
    assert res["cuda_graphs_used"] is False and res["cuda_graphs_fallback"].startswith("UserError")
    with pytest.raises(UserError, match="CUDA graphs need a CUDA device"):
        tiny_fit("on")


def test_cuda_graphs_auto_falls_back_when_the_graph_step_differs_from_eager(monkeypatch, capsys):
    """A capture that 'works' but whose first step's loss differs from eager is not used; the weights it
    changed are put back, so the run is still exactly the eager one."""
    from common.training import loop as train

    def bad_capture(model, optimizer, loss_of_batch, batch_size, device, precision):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)   # a capture that leaves the weights changed
        return lambda idx: torch.tensor(123.0)

    eager, w_eager, _ = tiny_fit("off")
    monkeypatch.setattr(train, "graphed_step", bad_capture)
    capsys.readouterr()
    auto, w_auto, res = tiny_fit("auto")
    err = capsys.readouterr().err
    assert auto == eager and all(torch.equal(w_eager[k], w_auto[k]) for k in w_eager)
    assert ("falling back to eager (RuntimeError: first-step loss 123 with the graph vs" in err
            and not res["cuda_graphs_used"])


def test_stop_at_then_resume_equals_an_uninterrupted_run(tmp_path, blood_npz):
    full = run_q1(blood_npz, tmp_path / "full", "--epochs", "3")
    # 1970: stop after epoch 1
    part = run_q1(blood_npz, tmp_path / "part", "--epochs", "3", "--stop-at", "1")
    assert part["status"] == "running" and len(part["history"]) == 1
    resumed = run_q1(blood_npz, tmp_path / "part", "--epochs", "3", "--resume")
    assert strip_times(resumed["history"]) == strip_times(full["history"]) and resumed["test"] == full["test"]
