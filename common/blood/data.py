"""BloodMNIST: find the npz, validate it, and hold each split as one normalised tensor."""
import os
from pathlib import Path

import numpy as np
import torch

from common.runfiles.files import UserError, md5_file, portable_path

OFFICIAL_MD5 = "7053d0359d879ad8a5505303e11de1dc"
PBC_MD5 = "6db333db046cf54f28b83bb059b1466d"   # the offline PBC-derived equivalent (shared/data/README.md)
ZENODO_URL = "https://zenodo.org/records/10519652/files/bloodmnist.npz"
CLASSES = ["basophil", "eosinophil", "erythroblast", "immature granulocytes",
           "lymphocyte", "monocyte", "neutrophil", "platelet"]
SPLITS = ("train", "val", "test")
ENV_VAR = "BLOODMNIST_NPZ"


def _help(data_dir):
    return (f"BloodMNIST not found and could not be downloaded. Download {ZENODO_URL} (MD5 {OFFICIAL_MD5}) "
            f"to {Path(data_dir) / 'bloodmnist.npz'}, or point --npz or ${ENV_VAR} at a copy")


def resolve_npz(npz=None, data_dir="data", download=True):
    """Where the data comes from, in order: --npz, $BLOODMNIST_NPZ, data/bloodmnist.npz, medmnist download.

    Returns (path, how) where how names the rule that matched."""
    if npz:
        if not Path(npz).is_file():
            raise UserError(f"--npz {npz}: no such file")
        return Path(npz), "--npz"
    env = os.environ.get(ENV_VAR)
    if env:
        if not Path(env).is_file():
            raise UserError(f"${ENV_VAR}={env}: no such file; fix the variable or unset it")
        return Path(env), f"${ENV_VAR}"
    local = Path(data_dir) / "bloodmnist.npz"
    if local.is_file():
        return local, "data dir"
    if not download:
        raise UserError(_help(data_dir))
    try:  # medmnist is only needed for the download, so import it here
        import medmnist
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        medmnist.BloodMNIST(split="train", root=str(data_dir), download=True, size=28)
    except Exception:  # any failure (no package, no network) gets the same actionable message
        raise UserError(_help(data_dir)) from None
    if not local.is_file():
        raise UserError(_help(data_dir))
    return local, "medmnist download"


def source_name(md5):
    return {OFFICIAL_MD5: "bloodmnist-official",
            PBC_MD5: "bloodmnist-pbc-equivalent"}.get(md5, "bloodmnist-other")


def load_npz(path):
    """Read and validate a MedMNIST-layout npz.
    Returns {split: (images uint8 (N,28,28,3), labels int64 (N,))}."""
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise UserError(f"{path} is not a readable npz file ({type(e).__name__}); "
                        "re-download BloodMNIST") from None
    out = {}
    for split in SPLITS:
        ki, kl = f"{split}_images", f"{split}_labels"
        for k in (ki, kl):
            if k not in arrays:
                raise UserError(f"{path} lacks key '{k}' (has {sorted(arrays)}); it is not a BloodMNIST npz")
        x, y = arrays[ki], arrays[kl]
        if x.ndim != 4 or x.shape[1:] != (28, 28, 3) or x.dtype != np.uint8:
            raise UserError(f"{path}: '{ki}' is {x.dtype}{tuple(x.shape)}, expected uint8 (N, 28, 28, 3); "
                            "use the 28x28 BloodMNIST file")
        y = y.reshape(-1)
        if len(y) != len(x):
            raise UserError(f"{path}: '{kl}' has {len(y)} labels for {len(x)} images")
        if len(y) == 0:
            raise UserError(f"{path}: split '{split}' is empty")
        if y.min() < 0 or y.max() > 7:
            raise UserError(f"{path}: '{kl}' has labels in [{y.min()}, {y.max()}], expected 0..7")
        out[split] = (x, y.astype(np.int64))
    return out


def to_tensors(images, labels, device="cpu"):
    """ToTensor then Normalize(0.5, 0.5), once per split:
    (N,28,28,3) uint8 -> (N,3,28,28) float in [-1, 1]."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255).sub_(0.5).div_(0.5)
    return x.contiguous().to(device), torch.from_numpy(labels).to(device)


def classification_report(scores, labels, n_classes=8):
    """Test metrics as the MedMNIST benchmark computes them (medmnist.evaluator.getACC / getAUC, task
    "multi-class") plus the confusion matrix (rows: true class, columns: predicted).

    scores: (N, C) class probabilities; labels: (N,) ints."""
    from medmnist.evaluator import getACC, getAUC  # medmnist imports sklearn: only when needed
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).reshape(-1)
    pred = scores.argmax(1)
    confusion = np.bincount(labels * n_classes + pred,
                            minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    return {"acc_medmnist": float(getACC(labels, scores, "multi-class")),
            "auc": float(getAUC(labels, scores, "multi-class")),
            "confusion": confusion.tolist()}


def load_bloodmnist(npz=None, data_dir="data", device="cpu", subset=None, download=True):
    """Everything a Q1 script needs: tensors per split plus a data record for metrics.json.

    subset: optional {split: n} to keep the first n items of a split (quick runs, tests)."""
    path, how = resolve_npz(npz, data_dir, download)
    arrays = load_npz(path)
    md5 = md5_file(path)
    tensors = {}
    for split, (x, y) in arrays.items():
        n = (subset or {}).get(split)
        tensors[split] = to_tensors(x[:n], y[:n], device)
    record = {"source": source_name(md5), "path": portable_path(path), "checksum": md5, "found_by": how,
              "sizes": {s: int(len(t[1])) for s, t in tensors.items()}}
    return tensors, record
