"""RNAcompete in the course's file format: norm_data.txt + metadata.xlsx -> one-hot tensors per split.

The course protocol, followed exactly so numbers compare with other implementations of the homework:
- one-hot A,C,G,U = [1,0,0,0] ... [0,0,0,1]; N or any other letter = 0.25 in each position;
- pad to 41 with zero vectors (plus a (N, 41) validity mask); truncate longer sequences, with a warning;
- intensities: NaN -> mask 0; clip at the 99.95th percentile of valid values; log(x + shift + 1e-6)
  with shift = |min| + 1 if min <= 0 else 0; z-score over valid values; masked entries set to 0.
  Each split is normalised with its own statistics, as the course code does (so test targets are
  standardised with test statistics; Spearman, the headline metric, is unaffected by this);
- split: SetA rows in file order, shuffled by numpy.random.RandomState(42); first 20% validation,
  rest train; SetB is test (96,261 / 24,065 / 121,031 on the real file).
"""
import hashlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .runio import UserError, md5_file, save_torch

LOADER_VERSION = 2   # 2: course arithmetic for targets (NaN->0 before min, std + eps); missing sequences = 41 x N
MAX_LEN = 41
SHEET = "Master List--Plasmid Info"
ALPHABET = "ACGU"
CODE_N, CODE_PAD = 4, 5
# code -> one-hot row: A C G U, N/other = 0.25 each, padding = zeros
ONE_HOT = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                        [0.25] * 4, [0, 0, 0, 0]], dtype=torch.float32)
_LUT = np.full(256, CODE_N, np.int8)
for _i, _c in enumerate(ALPHABET):
    _LUT[ord(_c)] = _LUT[ord(_c.lower())] = _i


def course_files(data_dir):
    """(norm_data.txt, metadata file) in data_dir, or None when the course files are not there."""
    d = Path(data_dir)
    meta = next((d / m for m in ("metadata.xlsx", "metadata.csv") if (d / m).is_file()), None)
    return (d / "norm_data.txt", meta) if (d / "norm_data.txt").is_file() and meta else None


def read_metadata(path):
    """Motif_ID / Protein_name table from metadata.xlsx (sheet 'Master List--Plasmid Info') or a CSV."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".csv":
            meta = pd.read_csv(path)
        else:
            meta = pd.read_excel(path, sheet_name=SHEET)
    except ValueError as e:
        raise UserError(f"{path}: cannot read sheet '{SHEET}' ({e}); use the course's metadata.xlsx or a CSV") from None
    meta.columns = [str(c).strip() for c in meta.columns]
    for col in ("Motif_ID", "Protein_name"):
        if col not in meta.columns:
            raise UserError(f"{path}: missing column '{col}' (has {list(meta.columns)})")
    meta = meta[["Motif_ID", "Protein_name"]].dropna()
    return meta.assign(Motif_ID=meta.Motif_ID.astype(str).str.strip(), Protein_name=meta.Protein_name.astype(str).str.strip())


def protein_ids(meta, proteins, available_columns):
    """Experiment ids (columns of norm_data.txt) for protein names; a clear error lists what exists."""
    ids = []
    present = meta[meta.Motif_ID.isin(available_columns)]
    for name in proteins:
        rows = present[present.Protein_name.str.upper() == name.upper()]
        if rows.empty:
            names = sorted(set(present.Protein_name))
            shown = ", ".join(names[:40]) + (f", ... ({len(names)} in all)" if len(names) > 40 else "")
            raise UserError(f"unknown protein '{name}': none of its ids is a column of norm_data.txt; available: {shown}")
        ids.append(rows.Motif_ID.iloc[0])
    return ids


def encode(seqs, max_len=MAX_LEN):
    """Sequences -> (codes int8 (N, max_len), valid bool (N, max_len)). Codes: 0-3 ACGU, 4 other, 5 padding."""
    # A missing sequence (NaN in RNA_Seq) is 41 x N, as in the course loader (not the text "nan").
    seqs = [s.strip() if isinstance(s, str) else "N" * max_len for s in seqs]
    lengths = np.fromiter((len(s) for s in seqs), np.int64, len(seqs))
    too_long = int((lengths > max_len).sum())
    if too_long:
        warnings.warn(f"{too_long} sequences longer than {max_len} nt were truncated to {max_len}", stacklevel=2)
    codes = np.full((len(seqs), max_len), CODE_PAD, np.int8)
    for i, s in enumerate(seqs):
        b = np.frombuffer(s[:max_len].encode("ascii", "replace"), np.uint8)
        codes[i, :len(b)] = _LUT[b]
    valid = np.arange(max_len)[None, :] < np.minimum(lengths, max_len)[:, None]
    return torch.from_numpy(codes), torch.from_numpy(valid)


def one_hot(codes):
    """(N, L) codes -> (N, L, 4) float one-hot (0.25s for N, zeros for padding)."""
    return ONE_HOT[codes.long()]


def decode(x, valid):
    """Inverse of encode + one_hot: (N, L, 4) one-hot and (N, L) validity -> sequences, N for ambiguous bases."""
    base, real = x.argmax(-1).cpu().numpy(), (x.amax(-1) == 1).cpu().numpy()
    lengths = valid.sum(1).cpu().numpy()
    return ["".join(ALPHABET[b] if r else "N" for b, r in zip(bs[:n], rs[:n])) for bs, rs, n in zip(base, real, lengths)]


def preprocess_intensities(values, clip_percentile=99.95, eps=1e-6):
    """Course normalisation of one split's intensity column -> (z float32, mask float32).

    This reproduces the course loader's arithmetic exactly, quirks included, so that targets and MSE
    values compare with every other implementation of the homework. Do not "fix" the quirks:
    - QUIRK 1: NaN is replaced by 0 *before* clipping and before the minimum is taken. So when a split has
      any NaN and all valid intensities are positive, the minimum is 0 and the shift is |0| + 1 = 1:
      targets are log(v + 1 + eps), not log(v + eps).
    - QUIRK 2: the clip threshold is the percentile of the valid values only, but the clip is applied to
      the NaN-zeroed array (a zero at a NaN position becomes the threshold when that is negative, which
      then also enters the minimum).
    - QUIRK 3: the z-score divides by std + eps (population std over valid values), not by std.
    Entries at NaN positions are set to 0 (multiplied by the mask)."""
    y = np.asarray(values, dtype=np.float64)
    mask = ~np.isnan(y)
    if not mask.any():
        raise ValueError("no valid values")
    v = np.nan_to_num(y, nan=0.0)                                      # QUIRK 1
    v = np.clip(v, None, np.percentile(y[mask], clip_percentile))     # QUIRK 2
    lo = v.min()                                                       # over NaN positions too (QUIRK 1)
    shift = abs(lo) + 1.0 if lo <= 0 else 0.0
    v = np.log(v + shift + eps)
    z = (v - v[mask].mean()) / (v[mask].std() + eps)                   # QUIRK 3
    return (z * mask).astype(np.float32), mask.astype(np.float32)


def split_setA(n, seed=42, val_fraction=0.2):
    """Indices (train, val) into the SetA rows in file order, as the course splits them."""
    perm = np.random.RandomState(seed).permutation(n)
    n_val = int(val_fraction * n)
    return perm[n_val:], perm[:n_val]


def _read_norm_data(path, ids):
    header = pd.read_csv(path, sep="\t", nrows=0).columns
    stripped = {c.strip(): c for c in header}
    for col in ("Probe_Set", "RNA_Seq"):
        if col not in stripped:
            raise UserError(f"{path}: missing column '{col}'; is this the course's norm_data.txt?")
    df = pd.read_csv(path, sep="\t", usecols=[stripped[c] for c in ("Probe_Set", "RNA_Seq", *ids)], low_memory=False)
    return df.rename(columns=lambda c: c.strip())


def _build(norm_path, meta_path, proteins):
    meta = read_metadata(meta_path)
    header = [c.strip() for c in pd.read_csv(norm_path, sep="\t", nrows=0).columns]
    ids = protein_ids(meta, proteins, set(header))
    df = _read_norm_data(norm_path, ids)
    sets = df.Probe_Set.astype(str).str.strip()
    setA, setB = np.flatnonzero(sets == "SetA"), np.flatnonzero(sets == "SetB")
    for name, rows in (("SetA", setA), ("SetB", setB)):
        if len(rows) == 0:
            raise UserError(f"{norm_path}: no {name} rows in column Probe_Set (values found: {sorted(sets.unique())[:5]})")
    tr, va = split_setA(len(setA))
    rows = {"train": setA[tr], "val": setA[va], "test": setB}
    codes, valid = encode(df.RNA_Seq.to_numpy())
    out = {}
    for split, r in rows.items():
        ys, ms = [], []
        for pid, name in zip(ids, proteins):
            try:
                z, m = preprocess_intensities(pd.to_numeric(df[pid].to_numpy()[r], errors="coerce"))
            except ValueError:
                raise UserError(f"{norm_path}: column {pid} ({name}) is all NaN in the {split} split") from None
            ys.append(z)
            ms.append(m)
        idx = torch.from_numpy(r)
        out[split] = {"codes": codes[idx], "valid": valid[idx],
                      "y": torch.from_numpy(np.stack(ys, 1)), "y_mask": torch.from_numpy(np.stack(ms, 1)),
                      "rows": idx}
    return out, ids


def load_rnacompete(data_dir, proteins, cache_dir="data/cache", source=None):
    """Tensors per split for one or more proteins, plus a data record for metrics.json.

    Each split: codes (N,41) int8, valid (N,41) bool, y (N,P) float32, y_mask (N,P) float32.
    Cached under cache_dir, keyed by the file checksum, proteins, split rule and loader version."""
    files = course_files(data_dir)
    if files is None:
        raise UserError(f"no course files in {data_dir}: put norm_data.txt and metadata.xlsx there, or generate "
                        f"simulated ones with `python -m common.simulate_rnacompete --out {data_dir}`")
    norm_path, meta_path = files
    checksum = md5_file(norm_path)
    key = hashlib.md5(f"{checksum}|{md5_file(meta_path)}|{','.join(proteins)}|setA-rs42-val0.2|v{LOADER_VERSION}".encode()).hexdigest()
    cache = Path(cache_dir) / f"rnacompete_{key}.pt"
    if cache.is_file():
        blob = torch.load(cache, weights_only=False)
        splits, ids = blob["splits"], blob["ids"]
    else:
        splits, ids = _build(norm_path, meta_path, proteins)
        save_torch(cache, {"splits": splits, "ids": ids})
    if source is None:
        source = "simulated" if (Path(data_dir) / "simulation.json").is_file() else "rnacompete"
    record = {"source": source, "path": str(norm_path), "checksum": checksum, "proteins": list(proteins), "ids": ids,
              "cache": str(cache), "sizes": {s: len(v["y"]) for s, v in splits.items()}}
    return splits, record
