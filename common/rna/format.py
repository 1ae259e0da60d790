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
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from common.runfiles.files import CorruptFile, UserError, load_torch, md5_file, portable_path, save_torch

# 3: cache holds names and data warnings; 2: course arithmetic for targets (NaN->0 before min, std + eps);
# missing sequences = 41 x N
LOADER_VERSION = 3
MAX_LEN = 41
SHEET = "Master List--Plasmid Info"
ALPHABET = "ACGU"
CODE_N, CODE_PAD = 4, 5
# code -> one-hot row: A C G U, N/other = 0.25 each, padding = zeros
ONE_HOT = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                        [0.25] * 4, [0, 0, 0, 0]], dtype=torch.float32)
MAX_UNKNOWN_FRACTION = 0.01   # above this share of unknown letters a file is refused, not silently read as N
_LUT = np.full(256, CODE_N, np.int8)
for _i, _c in enumerate(ALPHABET):
    _LUT[ord(_c)] = _LUT[ord(_c.lower())] = _i
_LUT[ord("T")] = _LUT[ord("t")] = 3   # a DNA-alphabet file: T is read as U (the course loader would read N)
_KNOWN = set("ACGUNTacgunt")


def course_files(data_dir):
    """(norm_data.txt, metadata file) in data_dir, or None when the course files are not there."""
    d = Path(data_dir)
    meta = next((d / m for m in ("metadata.xlsx", "metadata.csv") if (d / m).is_file()), None)
    return (d / "norm_data.txt", meta) if (d / "norm_data.txt").is_file() and meta else None


def find_sheet(sheet_names, wanted=SHEET):
    """The sheet whose name equals wanted ignoring case and surrounding spaces (the public master file
    spells it 'Master List--Plasmid info', the course config '...Info'), or None."""
    key = wanted.strip().casefold()
    return next((n for n in sheet_names if str(n).strip().casefold() == key), None)


def read_metadata(path):
    """Motif_ID / Protein_name table from metadata.xlsx (sheet 'Master List--Plasmid Info', any case) or a
    CSV."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".csv":
            meta = pd.read_csv(path)
        else:
            book = pd.ExcelFile(path)
            sheet = find_sheet(book.sheet_names)
            if sheet is None:
                raise UserError(f"{path}: no sheet '{SHEET}' (sheets: {book.sheet_names}); use the course's "
                                f"metadata.xlsx or the RNAcompete master file "
                                f"(python -m common.rna.download)")
            meta = pd.read_excel(book, sheet_name=sheet)
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"{path}: not a readable {'CSV' if path.suffix.lower() == '.csv' else 'xlsx'} file "
                        f"({type(e).__name__}); replace it with the course's metadata.xlsx or a CSV with "
                        f"Motif_ID, Protein_name") from None
    meta.columns = [str(c).strip() for c in meta.columns]
    for col in ("Motif_ID", "Protein_name"):
        if col not in meta.columns:
            raise UserError(f"{path}: missing column '{col}' (has {list(meta.columns)}); the metadata needs "
                            f"Motif_ID and Protein_name")
    meta = meta[["Motif_ID", "Protein_name"]].dropna()
    return meta.assign(Motif_ID=meta.Motif_ID.astype(str).str.strip(),
                       Protein_name=meta.Protein_name.astype(str).str.strip())


def protein_ids(meta, proteins, available_columns):
    """(ids, names): the experiment id (a column of norm_data.txt) and protein name of each entry of proteins,
    which may be protein names (resolved through the metadata) or RNAcompete ids such as RNCMPT00168."""
    ids, names = [], []
    present = meta[meta.Motif_ID.isin(available_columns)]
    for name in proteins:
        if name.upper().startswith("RNCMPT"):
            if name not in available_columns:
                raise UserError(
                    f"unknown RNAcompete id '{name}': not a column of norm_data.txt "
                    f"({sum(str(c).startswith('RNCMPT') for c in available_columns)} ids there, e.g. "
                    f"{', '.join(sorted(c for c in available_columns if str(c).startswith('RNCMPT'))[:5])})")
            rows = present[present.Motif_ID == name]
            ids.append(name)
            names.append(rows.Protein_name.iloc[0] if len(rows) else name)
            continue
        rows = present[present.Protein_name.str.upper() == name.upper()]
        if rows.empty:
            known = sorted(set(present.Protein_name))
            shown = ", ".join(known[:40]) + (f", ... ({len(known)} in all)" if len(known) > 40 else "")
            raise UserError(f"unknown protein '{name}': none of its ids is a column of norm_data.txt; pass "
                            f"a name or an RNCMPT id; available: {shown}")
        ids.append(rows.Motif_ID.iloc[0])
        names.append(rows.Protein_name.iloc[0])
    return ids, names


def sequence_report(seqs, max_len=MAX_LEN):
    """What encode() will do to these sequences that a user should hear about: missing sequences, truncations,
    T read as U, and letters other than A, C, G, U, N (read as N), with counts."""
    missing = sum(not isinstance(x, str) for x in seqs)
    text = [x.strip() for x in seqs if isinstance(x, str)]
    letters = pd.Series(list("".join(text))).value_counts() if text else pd.Series(dtype=int)
    unknown = {str(k): int(v) for k, v in letters.items() if k not in _KNOWN}
    n_bases = int(letters.sum())
    return {"missing": missing, "truncated": int(sum(len(x) > max_len for x in text)),
            "t_as_u": int(letters.get("T", 0) + letters.get("t", 0)), "unknown_letters": unknown,
            "unknown_fraction": sum(unknown.values()) / max(n_bases, 1), "bases": n_bases}


def encode(seqs, max_len=MAX_LEN):
    """Sequences -> (codes int8 (N, max_len), valid bool (N, max_len)). Codes: 0-3 ACGU (T = U), 4 N or
    other, 5 padding."""
    # A missing sequence (NaN in RNA_Seq) is 41 x N, as in the course loader (not the text "nan").
    seqs = [s.strip() if isinstance(s, str) else "N" * max_len for s in seqs]
    lengths = np.fromiter((len(s) for s in seqs), np.int64, len(seqs))
    too_long = int((lengths > max_len).sum())
    if too_long:
        warnings.warn(f"{too_long} sequences longer than {max_len} nt were truncated to {max_len}",
                      stacklevel=2)
    codes = np.full((len(seqs), max_len), CODE_PAD, np.int8)
    for i, s in enumerate(seqs):
        b = np.frombuffer(s[:max_len].encode("ascii", "replace"), np.uint8)
        codes[i, :len(b)] = _LUT[b]
    valid = np.arange(max_len)[None, :] < np.minimum(lengths, max_len)[:, None]
    return torch.from_numpy(codes), torch.from_numpy(valid)


def data_warnings(path, seq_report, nan_counts):
    """One line per thing worth saying about a file's contents; printed on every run, stored in
    metrics.json."""
    out = []
    r = seq_report
    if r["missing"]:
        out.append(f"{path}: {r['missing']:,} probes have no sequence (read as {MAX_LEN} x N, as the course "
                   f"loader does)")
    if r["truncated"]:
        out.append(f"{path}: {r['truncated']:,} sequences longer than {MAX_LEN} nt were truncated to "
                   f"{MAX_LEN}")
    if r["t_as_u"]:
        out.append(f"{path}: {r['t_as_u']:,} T bases read as U (a DNA-alphabet file)")
    if r["unknown_letters"]:
        shown = ", ".join(f"'{k}' x{v:,}" for k, v in sorted(r["unknown_letters"].items(),
                                                             key=lambda kv: -kv[1]))
        out.append(f"{path}: {sum(r['unknown_letters'].values()):,} letters other than A, C, G, U, N "
                   f"({100 * r['unknown_fraction']:.3f}% of bases) read as N: {shown}")
    for (pid, split), (n_nan, n) in nan_counts.items():
        if n_nan:
            out.append(f"{path}: {pid}: {n_nan:,} of {n:,} intensities in {split} are NaN "
                       f"({100 * n_nan / n:.1f}%), masked")
    return out


def one_hot(codes):
    """(N, L) codes -> (N, L, 4) float one-hot (0.25s for N, zeros for padding)."""
    return ONE_HOT[codes.long()]


def decode(x, valid):
    """Inverse of encode + one_hot: (N, L, 4) one-hot and (N, L) validity -> sequences, N for ambiguous
    bases."""
    base, real = x.argmax(-1).cpu().numpy(), (x.amax(-1) == 1).cpu().numpy()
    lengths = valid.sum(1).cpu().numpy()
    return ["".join(ALPHABET[b] if r else "N" for b, r in zip(bs[:n], rs[:n]))
            for bs, rs, n in zip(base, real, lengths)]


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


def read_header(path):
    """Stripped column names of norm_data.txt; one-line errors for an empty or not tab-separated file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline()
    if not first.strip():
        raise UserError(f"{path} is empty; download it again (python -m common.rna.download) or copy the "
                        f"course file")
    if "\t" not in first:
        raise UserError(f"{path} is not tab-separated (its header has no tab); norm_data.txt must be the "
                        f"course's tab-separated file")
    header = [c.strip() for c in first.rstrip("\r\n").split("\t")]
    for col in ("Probe_Set", "RNA_Seq"):
        if col not in header:
            raise UserError(f"{path}: missing column '{col}' (has {header[:6]}"
                            f"{' ...' if len(header) > 6 else ''}); use the course's norm_data.txt or "
                            f"`python -m common.rna.download`")
    return header


def _read_norm_data(path, ids):
    df = pd.read_csv(path, sep="\t", usecols=lambda c: c.strip() in {"Probe_Set", "RNA_Seq", *ids},
                     low_memory=False, dtype={c: str for c in ("Probe_Set", "RNA_Seq")})
    df = df.rename(columns=lambda c: c.strip())
    if df.empty:
        raise UserError(f"{path} has a header but no rows; download it again or copy the course file")
    return df


def intensities(path, df, pid, name):
    """The numeric intensity column; a column with values but no number among them is 'not numeric'."""
    raw = df[pid]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    text = raw.dropna()
    if len(text) and np.isnan(values).all():
        raise UserError(f"{path}: column {pid} ({name}) is not numeric (e.g. {str(text.iloc[0])!r}); "
                        f"intensities must be numbers")
    return values


def _build(norm_path, meta_path, proteins):
    meta = read_metadata(meta_path)
    header = read_header(norm_path)
    ids, names = protein_ids(meta, proteins, set(header))
    df = _read_norm_data(norm_path, ids)
    sets = df.Probe_Set.astype(str).str.strip()
    setA, setB = np.flatnonzero(sets == "SetA"), np.flatnonzero(sets == "SetB")
    for name, rows in (("SetA", setA), ("SetB", setB)):
        if len(rows) == 0:
            raise UserError(f"{norm_path}: no {name} rows in column Probe_Set (values found: "
                            f"{sorted(sets.unique())[:5]}); the course file marks training probes SetA "
                            f"and test probes SetB")
    seqs = df.RNA_Seq.to_numpy(dtype=object)
    report = sequence_report(seqs)
    if report["unknown_fraction"] > MAX_UNKNOWN_FRACTION:
        shown = ", ".join(f"'{k}' x{v:,}" for k, v in
                          sorted(report["unknown_letters"].items(), key=lambda kv: -kv[1])[:8])
        raise UserError(f"{norm_path}: {100 * report['unknown_fraction']:.1f}% of bases are not A, C, G, U "
                        f"or N ({shown}); more than {100 * MAX_UNKNOWN_FRACTION:.0f}% means the RNA_Seq "
                        f"column is not RNA sequence")
    tr, va = split_setA(len(setA))
    rows = {"train": setA[tr], "val": setA[va], "test": setB}
    with warnings.catch_warnings():   # truncation is reported through data_warnings, on every run
        warnings.simplefilter("ignore")
        codes, valid = encode(seqs)
    columns = {pid: intensities(norm_path, df, pid, name) for pid, name in zip(ids, names)}
    out, nan_counts = {}, {}
    for split, r in rows.items():
        ys, ms = [], []
        for pid, name in zip(ids, names):
            try:
                z, m = preprocess_intensities(columns[pid][r])
            except ValueError:
                raise UserError(f"{norm_path}: column {pid} ({name}) is all NaN in the {split} "
                                f"split") from None
            nan_counts[(pid, split)] = (int(len(m) - m.sum()), len(m))
            ys.append(z)
            ms.append(m)
        idx = torch.from_numpy(r)
        out[split] = {"codes": codes[idx], "valid": valid[idx],
                      "y": torch.from_numpy(np.stack(ys, 1)), "y_mask": torch.from_numpy(np.stack(ms, 1)),
                      "rows": idx}
    return out, ids, names, data_warnings(Path(norm_path).name, report, nan_counts)


def load_rnacompete(data_dir, proteins, cache_dir="data/cache", source=None):
    """Tensors per split for one or more proteins, plus a data record for metrics.json.

    Each split: codes (N,41) int8, valid (N,41) bool, y (N,P) float32, y_mask (N,P) float32.
    Cached under cache_dir, keyed by the file checksum, proteins, split rule and loader version."""
    files = course_files(data_dir)
    if files is None:
        raise UserError(f"no course files in {data_dir}: put norm_data.txt and metadata.xlsx there, or "
                        f"generate simulated ones with `python -m common.rna.simulate --out {data_dir}`")
    norm_path, meta_path = files
    checksum = md5_file(norm_path)
    key = hashlib.md5(f"{checksum}|{md5_file(meta_path)}|{','.join(proteins)}|setA-rs42-val0.2|"
                      f"v{LOADER_VERSION}".encode()).hexdigest()
    cache = Path(cache_dir) / f"rnacompete_{key}.pt"
    blob = None
    if cache.is_file():
        try:
            blob = load_torch(cache, "rebuilding it from the course files", weights_only=False)
        except CorruptFile as e:   # a cache is only a copy: rebuild it
            print(f"notice: {e}")
    if blob is not None:
        splits, ids, names, notes = blob["splits"], blob["ids"], blob["names"], blob["warnings"]
    else:
        splits, ids, names, notes = _build(norm_path, meta_path, proteins)
        save_torch(cache, {"splits": splits, "ids": ids, "names": names, "warnings": notes})
    sim = Path(data_dir) / "simulation.json"
    if source is None:
        source = "simulated" if sim.is_file() else "rnacompete"
    preset, ceilings = None, {}
    if sim.is_file():   # files of the simulator before its presets (no "preset" key) are the easy preset
        try:
            info = json.loads(sim.read_text())
        except (OSError, ValueError):
            raise UserError(f"{sim} is not readable JSON; regenerate the set with "
                            f"`python -m common.rna.simulate --out {data_dir}`") from None
        preset = info.get("preset", "easy")
        ceilings = {n: {k: info["proteins"].get(n, {}).get(f"{k}_spearman_setB")
                        for k in ("noise_ceiling", "sequence_ceiling")} for n in names}
    record = {"source": source, "preset": preset, "path": portable_path(norm_path), "checksum": checksum,
              "proteins": list(names), "requested": list(proteins), "ids": ids, "cache": portable_path(cache),
              "sizes": {s: len(v["y"]) for s, v in splits.items()}, "warnings": notes}
    if ceilings:   # the simulator's noise ceiling and sequence ceiling (SetB Spearman) per protein
        record["ceilings"] = ceilings
    return splits, record
