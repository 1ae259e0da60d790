"""Tests of the fast training path: each speed option leaves results unchanged, and the benchmark's
plumbing.

Run: python -m pytest -q tests/test_speed.py
"""
import importlib.util
import json
import platform
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

from common.rna.models import RNACNN
from common.runfiles.files import UserError
from common.training import device as cli


def load_bench():
    spec = importlib.util.spec_from_file_location("train_speed", ROOT / "bench" / "train_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.cpu_float
def test_cnn_unfolded_conv_with_zero_masking_equals_conv1d_with_minus_inf_masking():
    torch.manual_seed(0)
    model = RNACNN(kernel=6, filters=16)
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (32, 41)), 4).float()
    valid = torch.arange(41)[None, :] < torch.randint(30, 42, (32, 1))
    x[~valid] = 0
    with torch.no_grad():   # make many filters dead on some sequences, so that ties at 0 occur
        model.conv.bias -= 1.0
    plain = load_bench().PlainCNN(kernel=6, filters=16)   # the benchmark's reference: nn.Conv1d, -inf masking
    plain.load_state_dict(model.state_dict())
    ours = model.encode(x, valid)
    ref = plain.encode(x, valid)
    assert (ref == 0).any(), "the test needs some all-zero maxima to check the tie case"
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    g_ours = torch.autograd.grad(ours.square().sum(), list(model.conv.parameters()))
    g_ref = torch.autograd.grad(plain.encode(x, valid).square().sum(), list(plain.conv.parameters()))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc malloc only")
def test_malloc_keep_takes_effect_and_default_does_nothing():
    assert cli.set_malloc("default") is False
    assert cli.set_malloc("auto") is True   # Linux + glibc: auto = keep
    assert cli.set_malloc("keep") is True


def test_malloc_keep_without_glibc_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(cli.platform, "libc_ver", lambda: ("", ""))
    assert cli.set_malloc("auto") is False
    with pytest.raises(UserError, match="--malloc keep needs Linux with glibc"):
        cli.set_malloc("keep")


def test_malloc_keep_does_not_change_training(tmp_path):
    """The same seeded Q1.2 run in two fresh processes, one per setting: bit-identical losses."""
    code = ("import sys, torch; sys.path.insert(0, {root!r}); from common.training.device import set_malloc; "
            "from common.blood.models import BloodCNN; from common.training.loop import make_adam; "
            "set_malloc({mode!r}); "
            "torch.manual_seed(0); m = BloodCNN(pool=True); opt = make_adam(m.parameters(), 1e-3, 'cpu'); "
            "x = torch.randn(64, 3, 28, 28); y = torch.randint(0, 8, (64,)); out = []\n"
            "for _ in range(3):\n"
            "    loss = torch.nn.functional.cross_entropy(m(x), y); opt.zero_grad(); loss.backward(); "
            "opt.step(); out.append(loss.item())\n"
            "print(out)")
    runs = [subprocess.run([sys.executable, "-c", code.format(root=str(ROOT), mode=mode)],
                           capture_output=True, text=True, check=True).stdout for mode in ("default", "keep")]
    assert runs[0] == runs[1] and runs[0].startswith("[")


@pytest.mark.parametrize("device,pays,bf16,expected", [
    ("cpu", True, True, "bf16"), ("cpu", False, True, "fp32"), ("cpu", True, False, "fp32"),
    ("cuda", True, True, "fp32")])
def test_auto_precision_follows_the_measurements(monkeypatch, device, pays, bf16, expected):
    monkeypatch.setattr(cli, "cpu_has_bf16", lambda: bf16)
    assert cli.resolve_precision("auto", device, cpu_bf16_pays=pays) == expected
    # an explicit choice always wins
    assert cli.resolve_precision("fp32", device, cpu_bf16_pays=pays) == "fp32"


def test_bench_compares_each_row_with_the_reference_of_its_batch_size():
    bench = load_bench()
    rows = [{"model": "q2_cnn", "variant": label, "config": cfg, "batch_size": cfg.get("batch", 64)}
            for label, cfg in bench.variants_of("q2_cnn", all_rows=True)]   # bf16 rows too, on any CPU
    refs = {r["variant"]: bench.reference_of(r, rows)["variant"] for r in rows}
    assert refs["ours fp32, malloc keep, batch 256"] == "reference (fp32, DataLoader), batch 256"
    assert refs["ours bf16"] == "reference (fp32, DataLoader)"
    autos = [r["variant"] for r in rows if "(auto)" in r["variant"]]
    assert autos == ["ours fp32, malloc keep (auto)"]   # the Q2 CNN's auto precision is fp32 (measured)
    lstm = [{"model": "q2_lstm", "variant": label, "config": cfg, "batch_size": cfg.get("batch", 64)}
            for label, cfg in bench.variants_of("q2_lstm")]
    assert sum("(auto)" in r["variant"] for r in lstm) == 1
    auto = next(r for r in lstm if "(auto)" in r["variant"])
    # the plain BiLSTM
    assert bench.reference_of(auto, lstm)["variant"] == "reference, packed nn.LSTM (DataLoader)"


def test_bench_q1_flops_count():
    bench = load_bench()
    conv = 2 * 28 * 28 * 9 * (3 * 32 + 32 * 64 + 64 * 128)
    assert bench.q1_forward_flops(False) == conv + 2 * (128 * 28 * 28 * 256 + 256 * 8)


@pytest.mark.parametrize("native_bf16", [True, False])
def test_bench_has_an_auto_row_for_every_model_on_every_cpu_kind(monkeypatch, native_bf16):
    """Each model has exactly one (auto) row, on CPUs with and without native bf16; without it, no bf16 row
    runs."""
    import common.training.device
    bench = load_bench()
    monkeypatch.setattr(common.training.device, "cpu_has_bf16", lambda: native_bf16)
    # where the row table lives (bench/speed_parts.py)
    monkeypatch.setattr(sys.modules[bench.variants_of.__module__], "cpu_has_bf16", lambda: native_bf16)
    for name in bench.N_TRAIN:
        rows = bench.variants_of(name)
        assert sum(label.endswith("(auto)") for label, _ in rows) == 1, (name, rows)
        assert native_bf16 or not any(cfg.get("precision") == "bf16" for _, cfg in rows)
    assert any(cfg.get("precision") == "bf16" for _, cfg in bench.variants_of("q1_1", all_rows=True))
    assert bench.measured_ceiling(skip=True) == {"fp32": None, "bf16": None}


def test_bench_runs_one_row_end_to_end(tmp_path):
    out = tmp_path / "speed.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "train_speed.py"), "--models", "q2_cnn",
                    "--steps", "2", "--min-seconds", "0", "--warmup", "1", "--repeats", "1", "--q2-n", "256",
                    "--no-ceiling", "--out", str(out)],
                   check=True, capture_output=True, text=True, cwd=ROOT)
    result = json.loads(out.read_text())
    assert result["environment"]["isolation"].startswith("one fresh process per row")
    assert len(result["results"]) == len(load_bench().variants_of("q2_cnn"))
    assert all(r["epoch_seconds"] > 0 and r["speedup_vs_reference"] > 0 for r in result["results"])


def test_a_onednn_isa_cap_below_bf16_means_no_native_bf16(monkeypatch):
    """ONEDNN_MAX_CPU_ISA=AVX2 emulates bf16 (about 1 GFLOP/s, as on an AVX2-only CPU), so auto must pick
    fp32."""
    from common.training.device import cpu_has_bf16, resolve_precision
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert cpu_has_bf16() is False and resolve_precision("auto", "cpu") == "fp32"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert cpu_has_bf16() == ("avx512_bf16" in open("/proc/cpuinfo").read()
                              or "amx_bf16" in open("/proc/cpuinfo").read())
