"""RNAcompete simulator that writes the course's files (norm_data.txt, metadata.xlsx/.csv, simulation.json).

    python -m common.rna.simulate --out data/simulated              # preset "calibrated" (default)
    python -m common.rna.simulate --out data/simulated_easy --preset easy
    python -m common.rna.calibrate                       # figures/q2_data/calibration.*

The Q2 scripts read these files with the same loader as the real ones. Two presets:
- "calibrated" (the default, every committed Q2 result since 2026-11-30): set so that the data behave like
  the real RBFOX1 file (RNCMPT00168) under the course normalisation: the homework-default CNN and BiLSTM
  reach a best validation MSE of 0.28-0.40 and Spearman 0.55-0.72, and SetB targets reach z >= 6. Its
  binding model is in common/rna/binding.py; PARAMS_CALIBRATED and ANCHORS say where each number comes from.
  `python -m common.rna.calibrate` measures those quantities and writes them beside the real anchors.
- "easy" (the simulator before 2026-11-30; for tests and smoke runs only, never for results): nine listed
  sites with Auweter et al. 2006 Kd's, a weak composition term and little noise. Every model reaches its
  noise ceiling within 1-2 epochs, so the Q2 questions cannot be asked on it.
Both: probes i.i.d. uniform A/C/G/U, lengths uniform 38-41 (the real library is a de Bruijn design;
simulation.json reports the 9-mer coverage); about 1.5% of values are NaN; metrics files record the preset
(data.preset). signal_noise_free.txt holds the noise-free signal; simulation.json the parameters and the noise
ceiling (Spearman of the noise-free signal against the course-normalised SetB values).
Kd values of proteins other than RBFOX1 are illustrative choices around their well-known motifs.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

import common.rna.binding as sb
from common.rna.format import SHEET, preprocess_intensities
from common.runfiles.files import UserError, exit_on_user_error, write_json, write_text
from common.runfiles.flags import HelpFormatter

BASES = sb.BASES
K = sb.K
PRESETS = ("calibrated", "easy")
SIMULATOR_VERSION = 3   # 3: the five invented proteins are named sim-<name> (same draws, same norm_data.txt)
# RBFOX1 is calibrated against the real RBFOX1 file; the other five have INVENTED motifs loosely modelled on
# the named proteins, so their names say so (sim-<name>), in metadata.xlsx, simulation.json and every figure
# and table.
# name: (experiment id, {site: Kd nM}, composition weights per A,C,G,U fraction) -- the easy preset
PROTEINS = {
    "RBFOX1": ("RNCMPT00168", {"UGCAUGU": 0.83, "AGCAUGU": 4.8, "UGCACGU": 4.9, "CGCAUGU": 6.1,
                               "UGUAUGU": 280, "UACAUGU": 350, "UGCAUAU": 1830, "GCAUG": 25, "GCACG": 400},
               (0, 0, 0.06, 0.12)),
    "sim-PUM1": ("RNCMPT90001", {"UGUAAAU": 1.5, "UGUAUAU": 15, "UGUAAAA": 40, "UGUAAA": 120},
                 (0.06, 0, 0, 0.09)),
    "sim-HNRNPA1": ("RNCMPT90002", {"UAGGGA": 4, "UAGGGU": 8, "UAGGG": 60, "AGGGA": 300}, (0.09, 0, 0.06, 0)),
    "sim-QKI": ("RNCMPT90003", {"ACUAAC": 3, "ACUAAU": 20, "CUAAC": 80, "AUUAAC": 150}, (0.09, 0.03, 0, 0)),
    "sim-ELAVL1": ("RNCMPT90004", {"UUUAUUU": 4, "UUUUUUU": 10, "AUUUA": 50, "UUUUU": 200}, (0, 0, 0, 0.18)),
    "sim-SRSF1": ("RNCMPT90005", {"GGAGGA": 6, "GAAGAA": 40, "GGAGA": 90, "AGGAC": 400}, (0.06, 0, 0.09, 0)),
}
PARAMS = {"concentration_nM": 10.0, "nonspecific_Kd_nM": 1e5, "partial_Kd_nM": 3000.0,
          "accessibility_penalty": 0.25, "scale": 1000.0, "noise_mult_sd": 0.15, "noise_add_sd": 1.0,
          "nan_fraction": 0.015, "min_len": 38, "max_len": 41}

# The calibrated preset. Consensus: upper case = core position (penalty `core` for any other base), lower
# case = flank (penalty `flank`), N = any base. Exceptions: ln(Kd_variant / Kd_consensus) of measured single
# substitutions.
MOTIFS = {   # name: consensus, Kd0 nM, core, flank, exceptions, measured 7-mer Kd's kept exactly
    "RBFOX1": ("uGCAUGu", 0.83, 6.0, 1.9,
               {(0, "A"): np.log(4.8 / 0.83), (0, "C"): np.log(6.1 / 0.83), (4, "C"): np.log(4.9 / 0.83),
                (2, "U"): np.log(280 / 0.83), (1, "A"): np.log(350 / 0.83), (5, "A"): np.log(1830 / 0.83)},
               {k: v for k, v in PROTEINS["RBFOX1"][1].items() if len(k) == K}),
    "sim-PUM1": ("UGUAAAu", 1.5, 5.0, 1.9, {(4, "U"): np.log(10), (4, "C"): np.log(10),
                                            (6, "A"): np.log(40 / 1.5)}, {}),
    "sim-HNRNPA1": ("UAGGGAn", 4.0, 5.0, 1.9, {(5, "U"): np.log(2)}, {}),
    "sim-QKI": ("ACUAACn", 3.0, 5.0, 1.9, {(5, "U"): np.log(20 / 3)}, {}),
    "sim-ELAVL1": ("uUUAUUu", 4.0, 5.0, 1.9, {(3, "U"): np.log(10 / 4)}, {}),
    "sim-SRSF1": ("GGAGGAn", 6.0, 5.0, 1.9, {(1, "A"): 0.95, (4, "A"): 0.95}, {}),
}
PARAMS_CALIBRATED = {
    "concentration_nM": 0.25, "nonspecific_Kd_nM": 1e5, "kd_jitter_sd": 0.7, "accessibility_penalty": 0.25,
    "spacing_strong_theta": 0.02, "spacing_footprint_nt": 7, "spacing_ramp_nt": 6,
    "site_amplitude": 1200.0, "scale": 1000.0,
    "background_composition_ACGU": [-0.5, -0.5, 0.5, 0.5], "background_structure": -0.3,
    "background_kmer_sd": 0.30, "background_probe_sd": 0.25, "protein_composition_gain": 10.0,
    "noise_mult_sd": 0.36, "noise_add_sd": 0.05, "nan_fraction": 0.015, "min_len": 38, "max_len": 41}
ANCHORS = {   # where each calibrated parameter comes from (written to simulation.json)
    "RBFOX1 Kd0, substitutions, measured": "Auweter et al. 2006 (EMBO J): Kd's of RBFOX1 (FOX-1 RRM) "
                                           "7-mers, nM",
    "core / flank penalties": "core ln 6.0 ~ the measured single core substitutions (ln 5.8-7.7); flank ln "
                              "1.9 ~ the measured flank substitutions (ln 1.75-2.0); GCAUG with both flanks "
                              "wrong: Kd ~ 37 nM",
    "kd_jitter_sd": "assumption: idiosyncratic 7-mer affinities beyond an additive model (a graded spectrum)",
    "concentration_nM, site_amplitude": "the SetB z tail: z max >= 6 (ResidualBind's RBFOX1 analysis: -2 to "
                                        "10 z) with a best validation MSE of 0.28-0.40; a low concentration "
                                        "spreads the occupancies of strong and weak sites (UGCAUGU vs GCAUG "
                                        "with wrong flanks: 35x)",
    "accessibility_penalty": "secondary structure inhibits binding (RNAcompete, Ray et al. 2009/2013); the "
                             "easy preset's value",
    "spacing_*": "the spacing of two sites matters (ResidualBind's RBFOX1 analysis, Koo et al. 2021): within "
                 "one 7-nt footprint the weaker site is occluded, just beyond it hindered (illustrative "
                 "shape)",
    "background_*": "best validation MSE 0.31-0.36 and Spearman 0.58-0.68 of default-like and tuned models "
                    "on the real file: the non-motif probes' ranks carry sequence signal (composition, "
                    "structure, a 4-mer term), and a probe effect that no sequence explains (shared by every "
                    "protein) caps what a model can reach",
    "noise_*": "Pearson ~0.8 (R^2 ~ 1 - MSE) of tuned models on the real file; heteroscedastic (dim probes "
               "noisier)",
    "nan_fraction": "share of NaN intensities in the course file's columns (order of 1%); the easy preset's "
                    "value",
    "protein_composition_gain": "assumption: each protein's own composition preference (the easy preset's "
                                "weights x 10)",
}


def kd_table(sites, params):
    """Kd of each of the 4**7 7-mers for one protein (easy preset)."""
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


def probes(rng, n, params):
    """(lengths, codes, seqs, windows, in_probe) of n i.i.d. probes."""
    lengths = rng.integers(params["min_len"], params["max_len"] + 1, n)
    codes = rng.integers(0, 4, (n, params["max_len"]))
    seqs = ["".join(BASES[c] for c in row[:m]) for row, m in zip(codes, lengths)]
    windows = sb.kmer_codes(codes, K)                                # (N, 35)
    in_probe = np.arange(windows.shape[1])[None, :] + K <= lengths[:, None]
    return lengths, codes, seqs, windows, in_probe


def base_fractions(codes, lengths):
    return np.stack([((codes == b) & (np.arange(codes.shape[1]) < lengths[:, None])).sum(1) / lengths
                     for b in range(4)], 1)


def easy_signals(rng, n, proteins, params):
    """The pre-2026-11-30 simulator, draw for draw (its files keep their MD5)."""
    lengths, codes, seqs, windows, in_probe = probes(rng, n, params)
    access = sb.accessibility(codes, lengths, params["accessibility_penalty"])
    fractions = base_fractions(codes, lengths)
    for name in proteins:
        _, sites, comp = PROTEINS[name]
        kd = kd_table(sites, params)[windows]
        theta = params["concentration_nM"] / (params["concentration_nM"] + kd) * access * in_probe
        signal = theta.sum(1) + fractions @ np.asarray(comp)
        y = (params["scale"] * signal * np.exp(rng.normal(0, params["noise_mult_sd"], n))
             + rng.normal(0, params["noise_add_sd"], n))
        yield name, y, params["scale"] * signal, {}
    yield "_probes", seqs, codes, lengths


def calibrated_signals(rng, n, proteins, params):
    """The calibrated preset (common/rna/binding.py): one shared background, then each protein's sites and
    noise."""
    lengths, codes, seqs, windows, in_probe = probes(rng, n, params)
    access = sb.accessibility(codes, lengths, params["accessibility_penalty"])
    fractions = base_fractions(codes, lengths)
    paired = sb.paired_fraction(access, in_probe, params["accessibility_penalty"])
    ln_bg, probe_effect = sb.shared_background(codes, lengths, fractions, paired, params, rng)
    for name in proteins:
        consensus, kd0, core, flank, exceptions, measured = MOTIFS[name]
        pen = sb.penalty_matrix(consensus, core, flank, exceptions)
        kd = sb.pwm_kd_table(consensus, pen, kd0, measured, params["nonspecific_Kd_nM"],
                             params["kd_jitter_sd"], rng)
        occ = sb.occupancy(windows, access, in_probe, kd, params)
        own = params["protein_composition_gain"] * (fractions - 0.25) @ np.asarray(PROTEINS[name][2])
        background = np.exp(ln_bg + own)
        signal = params["scale"] * (background + params["site_amplitude"] * occ)
        noise = {"noise_add_sd": params["noise_add_sd"] * params["scale"],
                 "noise_mult_sd": params["noise_mult_sd"]}
        y = sb.measure(signal, noise, rng)
        from_sequence = params["scale"] * (background * np.exp(-probe_effect)
                                           + params["site_amplitude"] * occ)
        yield name, y, signal, {"background": params["scale"] * background,
                                "from_sequence": from_sequence,
                                "kd_percentiles_nM": {q: float(np.percentile(kd, q))
                                                      for q in (0.1, 1, 5, 50)}}
    yield "_probes", seqs, codes, lengths


def simulate(out, seed=0, n_seta=120_326, n_setb=121_031, proteins=tuple(PROTEINS), params=None,
             preset="calibrated"):
    """Write the course files for one preset into out; returns the simulation.json record."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset '{preset}'; choose from {list(PRESETS)}")
    params = params or (PARAMS_CALIBRATED if preset == "calibrated" else PARAMS)
    t0 = time.time()
    rng = np.random.default_rng(seed)
    n = n_seta + n_setb
    sets = np.array(["SetA"] * n_seta + ["SetB"] * n_setb)
    measured, clean, ceiling, extra = {}, {}, {}, {}
    gen = (calibrated_signals if preset == "calibrated" else easy_signals)(rng, n, proteins, params)
    for name, y, signal, more in gen:
        if name == "_probes":
            seqs, codes, lengths = y, signal, more
            break
        pid = PROTEINS[name][0]
        y[rng.random(n) < params["nan_fraction"]] = np.nan
        measured[pid], clean[pid] = y, signal
        if "background" in more:
            clean[f"{pid}_background"] = more.pop("background")
        b = sets == "SetB"
        z, m = preprocess_intensities(y[b])
        ceiling[name] = float(spearmanr(signal[b][m > 0], z[m > 0]).statistic)
        # what any model of the sequence could reach at most: no probe effect, no noise
        if "from_sequence" in more:
            more["sequence_ceiling_spearman_setB"] = float(spearmanr(more.pop("from_sequence")[b][m > 0],
                                                                     z[m > 0]).statistic)
        extra[name] = more
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    probe_ids = [f"SIM{i:06d}" for i in range(n)]
    norm = pd.DataFrame({"Probe_ID": probe_ids, "Probe_Set": sets, "RNA_Seq": seqs, **measured})
    write_text(out / "norm_data.txt", norm.to_csv(sep="\t", index=False, float_format="%.5g"))
    write_text(out / "signal_noise_free.txt",
               pd.DataFrame({"Probe_ID": probe_ids, **clean}).to_csv(sep="\t", index=False,
                                                                     float_format="%.6g"))
    # stray spaces in the column names, as in the course file
    meta = pd.DataFrame({"Motif_ID ": [PROTEINS[p][0] for p in proteins], " Protein_name": list(proteins),
                         "Species": "Homo_sapiens",
                         "Notes": ["simulated, calibrated to the real RBFOX1 file" if p == "RBFOX1" else
                                   "simulated: an invented motif, not the real protein" for p in proteins]})
    meta.to_excel(out / "metadata.xlsx", sheet_name=SHEET, index=False)
    write_text(out / "metadata.csv", meta.to_csv(index=False))
    nine = np.bincount(sb.kmer_codes(codes, 9)[np.arange(params["max_len"] - 8)[None, :] + 9
                                               <= lengths[:, None]], minlength=4 ** 9)
    info = {"preset": preset, "simulator_version": SIMULATOR_VERSION, "seed": seed,
            "sizes": {"SetA": n_seta, "SetB": n_setb},
            "proteins": {p: {"id": PROTEINS[p][0], **protein_spec(p, preset), **extra[p],
                             "noise_ceiling_spearman_setB": ceiling[p]} for p in proteins},
            "params": params, "anchors": ANCHORS if preset == "calibrated" else None,
            "sampling": "i.i.d. uniform bases, lengths uniform 38-41",
            "ninemer_coverage": {"min": int(nine.min()), "median": float(np.median(nine)),
                                 "fraction_ge_16": float((nine >= 16).mean())},
            "seconds": time.time() - t0}
    write_json(out / "simulation.json", info)
    return info


def is_default(data_dir):
    """True when data_dir holds the default data set: the calibrated preset of this simulator version with the
    default seed, sizes, proteins and parameters (a set from an older calibration is not the default)."""
    try:
        info = json.loads((Path(data_dir) / "simulation.json").read_text())
    except (OSError, ValueError):
        return False
    return (info.get("preset") == "calibrated" and info.get("simulator_version") == SIMULATOR_VERSION
            and info.get("seed") == 0 and info.get("sizes") == {"SetA": 120_326, "SetB": 121_031}
            and list(info.get("proteins", {})) == list(PROTEINS)
            and json.loads(json.dumps(PARAMS_CALIBRATED)) == info.get("params")
            and (Path(data_dir) / "norm_data.txt").is_file())


def protein_spec(name, preset):
    if preset == "easy":
        return {"sites_Kd_nM": PROTEINS[name][1], "composition_weights_ACGU": PROTEINS[name][2]}
    consensus, kd0, core, flank, exceptions, measured = MOTIFS[name]
    return {"consensus": consensus, "Kd0_nM": kd0, "core_penalty_ln": core, "flank_penalty_ln": flank,
            "substitutions_ln": {f"{t + 1}{b}": float(v) for (t, b), v in exceptions.items()},
            "measured_Kd_nM": measured, "composition_weights_ACGU": PROTEINS[name][2]}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m common.rna.simulate", formatter_class=HelpFormatter,
                                description="Write a simulated RNAcompete data set in the course's file "
                                            "format.")
    p.add_argument("--out", default="data/simulated", help="output folder")
    p.add_argument("--preset", choices=PRESETS, default="calibrated",
                   help="calibrated = behaves like the real RBFOX1 file (results); easy = the old fast set "
                        "(tests, smoke runs)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--n-seta", type=int, default=120_326, help="SetA probes (as the real library)")
    p.add_argument("--n-setb", type=int, default=121_031, help="SetB probes")
    p.add_argument("--proteins", nargs="+", default=list(PROTEINS),
                   help=f"proteins to simulate, from {list(PROTEINS)}")
    args = p.parse_args(argv)
    unknown = [x for x in args.proteins if x not in PROTEINS]
    if unknown or args.n_seta < 5 or args.n_setb < 1:
        raise UserError(f"unknown proteins {unknown} (choose from {list(PROTEINS)})" if unknown
                        else "need --n-seta >= 5 and --n-setb >= 1")
    info = simulate(args.out, args.seed, args.n_seta, args.n_setb, args.proteins, preset=args.preset)
    print(f"wrote {args.out}/norm_data.txt (preset {args.preset}; {args.n_seta} SetA + {args.n_setb} "
          f"SetB probes) in {info['seconds']:.1f}s; noise ceilings (SetB Spearman): "
          + ", ".join(f"{k} {v['noise_ceiling_spearman_setB']:.3f}" for k, v in info["proteins"].items()))


if __name__ == "__main__":
    exit_on_user_error(main)
