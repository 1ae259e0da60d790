"""Shared fixtures. Run the whole suite with: python -m pytest -q tests"""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist runs one test per core: each worker, and every script a test starts, uses one thread, so
    # that the workers do not oversubscribe the cores (the quick runs' tiny models gain nothing from a second
    # thread: 24.4 s with two threads against 27.0 s with one, measured on two Q2.2 + Q1.1 quick runs).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    torch.set_num_threads(1)


def pytest_configure(config):
    config.addinivalue_line("markers", "cpu_float: asserts on trained or accumulated float values, which "
                            "change with the CPU's kernels; .ci/run reruns these under "
                            "ATEN_CPU_CAPABILITY=avx2 and default")


def make_blood_npz(path, n=(96, 32, 32), seed=0, **overrides):
    """A tiny BloodMNIST-layout npz. Class k images are brighter in channel k % 3, so a model can learn
    them."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, size in zip(("train", "val", "test"), n):
        y = rng.integers(0, 8, size=(size, 1)).astype(np.uint8)
        x = rng.integers(0, 120, size=(size, 28, 28, 3)).astype(np.uint8)
        for i, label in enumerate(y[:, 0]):
            x[i, :, :, label % 3] += np.uint8(16 * label)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = x, y
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return Path(path)


@pytest.fixture
def blood_npz(tmp_path):
    return make_blood_npz(tmp_path / "tiny_blood.npz")
