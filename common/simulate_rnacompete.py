"""A biophysical RNAcompete simulator that writes the course's files (norm_data.txt, metadata.xlsx/.csv).

    python -m common.simulate_rnacompete --out data/simulated --seed 0

The Q2 scripts then read these files with the same loader as the real ones. Model, per protein:
- probes: i.i.d. uniform A/C/G/U, lengths uniform in 38-41 (random sampling, not the real library's
  de Bruijn design in which every 9-mer appears >= 16 times; simulation.json reports the 9-mer coverage);
- each 7-mer window w binds with dissociation constant Kd(w): the measured Kd of RBFOX1 7-mers
  (Auweter et al. 2006, nM), else the best listed shorter core site it contains, else a weak partial
  site (one mismatch from the best 7-mer), else a non-specific Kd;
- occupancy theta = c / (c + Kd) at protein concentration c; occupancies of all windows add up;
- a window whose central 5-mer can pair (Watson-Crick) with a 5-mer elsewhere in the probe, at least
  3 nt away, is likely structured: its occupancy is multiplied by the accessibility penalty;
- plus a sequence-composition background (a weight per base fraction);
- measured = scale * signal * exp(N(0, s_mult)) + N(0, s_add); about 1.5% of values are NaN.
The noise-free signal goes to signal_noise_free.txt. simulation.json records the parameters and the noise
ceiling: Spearman of the noise-free signal against the measured values (course-normalised) on SetB.
Kd values of proteins other than RBFOX1 are illustrative choices around their well-known motifs.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .rnacompete import SHEET, preprocess_intensities
from .runio import UserError, exit_on_user_error, write_json, write_text

BASES = "ACGU"
K = 7
PROTEINS = {   # name: (experiment id, {site: Kd nM}, composition weights per A,C,G,U fraction)
    "RBFOX1": ("RNCMPT00168", {"UGCAUGU": 0.83, "AGCAUGU": 4.8, "UGCACGU": 4.9, "CGCAUGU": 6.1, "UGUAUGU": 280,
                               "UACAUGU": 350, "UGCAUAU": 1830, "GCAUG": 25, "GCACG": 400}, (0, 0, 0.06, 0.12)),
    "PUM1": ("RNCMPT90001", {"UGUAAAU": 1.5, "UGUAUAU": 15, "UGUAAAA": 40, "UGUAAA": 120}, (0.06, 0, 0, 0.09)),
    "HNRNPA1": ("RNCMPT90002", {"UAGGGA": 4, "UAGGGU": 8, "UAGGG": 60, "AGGGA": 300}, (0.09, 0, 0.06, 0)),
    "QKI": ("RNCMPT90003", {"ACUAAC": 3, "ACUAAU": 20, "CUAAC": 80, "AUUAAC": 150}, (0.09, 0.03, 0, 0)),
    "ELAVL1": ("RNCMPT90004", {"UUUAUUU": 4, "UUUUUUU": 10, "AUUUA": 50, "UUUUU": 200}, (0, 0, 0, 0.18)),
    "SRSF1": ("RNCMPT90005", {"GGAGGA": 6, "GAAGAA": 40, "GGAGA": 90, "AGGAC": 400}, (0.06, 0, 0.09, 0)),
}
PARAMS = {"concentration_nM": 10.0, "nonspecific_Kd_nM": 1e5, "partial_Kd_nM": 3000.0, "accessibility_penalty": 0.25,
          "scale": 1000.0, "noise_mult_sd": 0.15, "noise_add_sd": 1.0, "nan_fraction": 0.015, "min_len": 38, "max_len": 41}


def kmer_codes(seq_codes, k):
    """(N, L) base codes -> (N, L-k+1) integer codes of every k-mer (base 4, first base most significant)."""
    n, length = seq_codes.shape
    out = np.zeros((n, length - k + 1), np.int64)
    for t in range(k):
        out = out * 4 + seq_codes[:, t:length - k + 1 + t]
    return out


def kd_table(sites, params):
    """Kd of each of the 4**7 7-mers for one protein."""
    kmers = ["".join(BASES[(c >> (2 * (K - 1 - t))) & 3] for t in range(K)) for c in range(4 ** K)]
    best = min(sites, key=sites.get)
    kd = np.full(4 ** K, params["nonspecific_Kd_nM"])
    for c, w in enumerate(kmers):
        if len(best) == K and sum(a != b for a, b in zip(w, best)) == 1:
            kd[c] = params["partial_Kd_nM"]
        for site, value in sites.items():
            if site in w:
                kd[c] = min(kd[c], value)
    return kd


def accessibility(seq_codes, lengths, penalty, chunk=20000):
    """(N, W) factor per 7-mer window: penalty where its central 5-mer can pair elsewhere in the probe."""
    comp = np.array([3, 2, 1, 0])            # A-U, C-G
    n, length = seq_codes.shape
    w = length - K + 1
    c5 = kmer_codes(seq_codes, 5)                                   # (N, L-4)
    rc5 = kmer_codes(comp[seq_codes[:, ::-1]], 5)[:, ::-1]          # reverse complement of the 5-mer ending... aligned below
    # rc5[:, p] is the reverse complement of the 5-mer starting at p (reversing twice realigns the index)
    centre = rc5[:, 1:1 + w]                                        # central 5-mer of window j starts at j + 1
    p = np.arange(c5.shape[1])
    far = np.abs(p[None, :] - (np.arange(w) + 1)[:, None]) >= 5 + 3  # (W, P): no overlap, loop >= 3 nt
    valid5 = p[None, :] + 5 <= lengths[:, None]                     # (N, P)
    out = np.ones((n, w))
    for s in range(0, n, chunk):
        hit = (centre[s:s + chunk, :, None] == c5[s:s + chunk, None, :]) & far[None] & valid5[s:s + chunk, None, :]
        out[s:s + chunk][hit.any(2)] = penalty
    return out


def simulate(out, seed=0, n_seta=120_326, n_setb=121_031, proteins=tuple(PROTEINS), params=PARAMS):
    t0 = time.time()
    rng = np.random.default_rng(seed)
    n = n_seta + n_setb
    lengths = rng.integers(params["min_len"], params["max_len"] + 1, n)
    codes = rng.integers(0, 4, (n, params["max_len"]))
    seqs = ["".join(BASES[c] for c in row[:m]) for row, m in zip(codes, lengths)]
    windows = kmer_codes(codes, K)                                   # (N, 35)
    in_probe = np.arange(windows.shape[1])[None, :] + K <= lengths[:, None]
    access = accessibility(codes, lengths, params["accessibility_penalty"])
    fractions = np.stack([((codes == b) & (np.arange(codes.shape[1]) < lengths[:, None])).sum(1) / lengths for b in range(4)], 1)
    sets = np.array(["SetA"] * n_seta + ["SetB"] * n_setb)
    measured, clean, ceiling = {}, {}, {}
    for name in proteins:
        pid, sites, comp = PROTEINS[name]
        kd = kd_table(sites, params)[windows]
        theta = params["concentration_nM"] / (params["concentration_nM"] + kd) * access * in_probe
        signal = theta.sum(1) + fractions @ np.asarray(comp)
        y = params["scale"] * signal * np.exp(rng.normal(0, params["noise_mult_sd"], n)) + rng.normal(0, params["noise_add_sd"], n)
        y[rng.random(n) < params["nan_fraction"]] = np.nan
        measured[pid], clean[pid] = y, params["scale"] * signal
        b = sets == "SetB"
        z, m = preprocess_intensities(y[b])
        ceiling[name] = float(spearmanr(clean[pid][b][m > 0], z[m > 0]).statistic)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    probe_ids = [f"SIM{i:06d}" for i in range(n)]
    norm = pd.DataFrame({"Probe_ID": probe_ids, "Probe_Set": sets, "RNA_Seq": seqs, **measured})
    write_text(out / "norm_data.txt", norm.to_csv(sep="\t", index=False, float_format="%.5g"))
    write_text(out / "signal_noise_free.txt", pd.DataFrame({"Probe_ID": probe_ids, **clean}).to_csv(sep="\t", index=False, float_format="%.6g"))
    meta = pd.DataFrame({"Motif_ID ": [PROTEINS[p][0] for p in proteins], " Protein_name": list(proteins),
                         "Species": "Homo_sapiens", "Notes": "simulated"})   # stray spaces, as in the course file
    meta.to_excel(out / "metadata.xlsx", sheet_name=SHEET, index=False)
    write_text(out / "metadata.csv", meta.to_csv(index=False))
    nine = np.bincount(kmer_codes(codes, 9)[np.arange(params["max_len"] - 8)[None, :] + 9 <= lengths[:, None]], minlength=4 ** 9)
    info = {"seed": seed, "sizes": {"SetA": n_seta, "SetB": n_setb}, "proteins": {p: {"id": PROTEINS[p][0], "sites_Kd_nM": PROTEINS[p][1],
            "composition_weights_ACGU": PROTEINS[p][2], "noise_ceiling_spearman_setB": ceiling[p]} for p in proteins},
            "params": params, "sampling": "i.i.d. uniform bases, lengths uniform 38-41",
            "ninemer_coverage": {"min": int(nine.min()), "median": float(np.median(nine)), "fraction_ge_16": float((nine >= 16).mean())},
            "seconds": time.time() - t0}
    write_json(out / "simulation.json", info)
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description="Write a simulated RNAcompete data set in the course's file format.")
    p.add_argument("--out", default="data/simulated", help="output folder (default data/simulated)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--n-seta", type=int, default=120_326, help="SetA probes (default 120,326, as the real library)")
    p.add_argument("--n-setb", type=int, default=121_031, help="SetB probes (default 121,031)")
    p.add_argument("--proteins", nargs="+", default=list(PROTEINS), help=f"proteins to simulate, from {list(PROTEINS)}")
    args = p.parse_args(argv)
    unknown = [x for x in args.proteins if x not in PROTEINS]
    if unknown or args.n_seta < 5 or args.n_setb < 1:
        raise UserError(f"unknown proteins {unknown} (choose from {list(PROTEINS)})" if unknown else "need --n-seta >= 5 and --n-setb >= 1")
    info = simulate(args.out, args.seed, args.n_seta, args.n_setb, args.proteins)
    print(f"wrote {args.out}/norm_data.txt ({args.n_seta} SetA + {args.n_setb} SetB probes) in {info['seconds']:.1f}s; "
          f"noise ceilings (SetB Spearman): " + ", ".join(f"{k} {v['noise_ceiling_spearman_setB']:.3f}" for k, v in info["proteins"].items()))


if __name__ == "__main__":
    exit_on_user_error(main)
