"""The calibrated RNAcompete simulator (common/rna/binding.py, preset "calibrated"): each documented mechanism
on small hand-made probes, the presets, and the calibration record's keys. No test depends on a full-size
run.

Run: python -m pytest -q tests/test_simulator.py
"""
import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from common.rna import binding as sb
from common.rna.simulate import MOTIFS, PARAMS_CALIBRATED, is_default, simulate

P = PARAMS_CALIBRATED
# 41 nt with no RBFOX1 site, in which a planted UGCAUGU cannot pair (in an A/C background "CA" + UGCAUGU would
# make CAUGC, the reverse complement of the site's GCAUG, so that two sites could fold onto each other)
NEUTRAL = "A" * 41


def codes_of(seqs):
    c = np.array([["ACGU".index(b) for b in s] for s in seqs])
    return c, np.array([len(s) for s in seqs])


def rbfox1_kd(jitter=0.0):
    consensus, kd0, core, flank, exceptions, measured = MOTIFS["RBFOX1"]
    pen = sb.penalty_matrix(consensus, core, flank, exceptions)
    return sb.pwm_kd_table(consensus, pen, kd0, measured, P["nonspecific_Kd_nM"], jitter,
                           np.random.default_rng(0))


def occupancy(seqs, kd=None):
    codes, lengths = codes_of(seqs)
    windows = sb.kmer_codes(codes, sb.K)
    in_probe = np.arange(windows.shape[1])[None, :] + sb.K <= lengths[:, None]
    access = sb.accessibility(codes, lengths, P["accessibility_penalty"])
    return sb.occupancy(windows, access, in_probe, rbfox1_kd() if kd is None else kd, P)


def plant(base, sites):
    s = list(base)
    for pos, site in sites:
        s[pos:pos + len(site)] = site
    return "".join(s)


def test_measured_kds_are_kept_and_the_spectrum_is_graded():
    kd = rbfox1_kd(jitter=P["kd_jitter_sd"])
    code = lambda w: sum("ACGU".index(b) * 4 ** (6 - t) for t, b in enumerate(w))
    for site, value in MOTIFS["RBFOX1"][5].items():              # Auweter et al. 2006, exactly
        assert kd[code(site)] == value
    assert kd.min() == pytest.approx(0.83)
    # many intermediate affinities, not a handful of sites
    graded = ((kd > 10) & (kd < 10_000)).sum()
    # 193 with this jitter draw; the easy preset has 9
    assert graded > 150 and kd.max() == P["nonspecific_Kd_nM"]
    no_jitter = rbfox1_kd()
    assert (no_jitter[code("AGCAUGU")] == pytest.approx(4.8)
            and no_jitter[code("UGCAUAU")] == pytest.approx(1830))
    assert no_jitter[code("AGCAUGA")] > no_jitter[code("AGCAUGU")]  # a second flank mismatch binds weaker


def test_more_sites_mean_more_signal_about_linearly():
    seqs = [plant(NEUTRAL, [(p, "UGCAUGU") for p in positions])
            for positions in ([], [2], [2, 17], [2, 17, 32])]
    occ = occupancy(seqs)
    steps = np.diff(occ)
    assert (steps > 0).all()                                      # 0 < 1 < 2 < 3 sites
    assert steps[1:] == pytest.approx(steps[0], rel=0.05)         # each well-spaced site adds the same


def test_a_structured_site_binds_less():
    site = plant(NEUTRAL, [(10, "UGCAUGU")])
    # the reverse complement of the site's central 5-mer GCAUG (CAUGC) 10 nt downstream: a hairpin stem
    structured = plant(site, [(27, "CAUGC")])
    control = plant(site, [(27, "CACCC")])
    a, b = occupancy([structured, control])
    assert a == pytest.approx(b * P["accessibility_penalty"], rel=0.02)


def test_spacing_two_sites_within_one_footprint_count_as_one_and_close_ones_are_hindered():
    single = occupancy([plant(NEUTRAL, [(5, "UGCAUGU")])])[0]
    overlapping = occupancy([plant(NEUTRAL, [(5, "UGCAUGCAUGU")])])[0]      # sites 4 nt apart: one footprint
    close = occupancy([plant(NEUTRAL, [(5, "UGCAUGUAUGCAUGU")])])[0]         # 8 nt apart: hindered
    far = occupancy([plant(NEUTRAL, [(5, "UGCAUGU"), (25, "UGCAUGU")])])[0]   # 20 nt apart: additive
    assert overlapping < 1.3 * single and single < close < far and far == pytest.approx(2 * single, rel=0.05)
    f = sb.spacing_factors(np.array([[0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.4]]), 0.1, 7, 6)
    assert f[0, 0] == 1.0 and f[0, 8] == pytest.approx(2 / 7)   # the weaker site, 8 nt from a stronger one


@pytest.fixture(scope="module")
def small_sets(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    simulate(d / "cal", seed=1, n_seta=1500, n_setb=1500)
    simulate(d / "easy", seed=1, n_seta=300, n_setb=200, preset="easy")
    return d


def test_the_shared_background_is_correlated_across_proteins(small_sets):
    clean = pd.read_csv(small_sets / "cal" / "signal_noise_free.txt", sep="\t")
    bg = clean[[c for c in clean.columns if c.endswith("_background")]]
    assert bg.shape[1] == 6
    rho = spearmanr(bg.to_numpy()).statistic
    assert rho[np.triu_indices(6, 1)].min() > 0.8   # the same probe effect and sequence terms for all
    norm = pd.read_csv(small_sets / "cal" / "norm_data.txt", sep="\t")
    free = ~norm.RNA_Seq.str.contains("GCAUG|UGUA|AGGG|CUAA|UUUAU|GGAG")   # probes without any protein's core
    y = np.log(norm.loc[free, ["RNCMPT00168", "RNCMPT90001"]].dropna().clip(lower=1))
    # measured too, between two unrelated proteins
    assert spearmanr(y.iloc[:, 0], y.iloc[:, 1]).statistic > 0.3


def test_targets_have_a_right_tail_and_motif_probes_rank_high(small_sets):
    from common.rna.format import preprocess_intensities
    norm = pd.read_csv(small_sets / "cal" / "norm_data.txt", sep="\t")
    z, m = preprocess_intensities(norm.RNCMPT00168.to_numpy())
    z = z[m > 0]
    assert np.quantile(z, 0.99) - np.median(z) > np.median(z) - np.quantile(z, 0.01)   # right-skewed
    has = norm.RNA_Seq[m > 0].str.contains("UGCAUG").to_numpy()
    assert z[has].mean() > z[~has].mean() + 2


def test_presets_are_recorded_and_the_easy_preset_is_unchanged(small_sets, tmp_path):
    info = json.loads((small_sets / "cal" / "simulation.json").read_text())
    assert (info["preset"] == "calibrated" and info["anchors"]
            and "sequence_ceiling_spearman_setB" in info["proteins"]["RBFOX1"])
    assert json.loads((small_sets / "easy" / "simulation.json").read_text())["preset"] == "easy"
    assert not is_default(small_sets / "cal")                     # a small set is not the default data
    simulate(tmp_path, seed=1, n_seta=1500, n_setb=1500)
    assert (tmp_path / "norm_data.txt").read_bytes() == (small_sets / "cal" / "norm_data.txt").read_bytes()


def test_metrics_record_the_preset(small_sets):
    from common.rna.format import load_rnacompete
    for preset in ("cal", "easy"):
        _, record = load_rnacompete(small_sets / preset, ["RBFOX1"], cache_dir=str(small_sets / "cache"))
        assert record["preset"] == {"cal": "calibrated", "easy": "easy"}[preset]


def test_calibration_record_has_its_keys(small_sets, tmp_path):
    from common.rna.calibrate import calibrate
    cal = calibrate(small_sets / "cal", tmp_path, epochs=1, default_only=False)
    saved = json.loads((tmp_path / "calibration.json").read_text())
    assert saved["data_checksum"] == cal["data_checksum"] and len(saved["data_checksum"]) == 32
    for m in ("cnn", "lstm"):
        assert {"best_val_mse", "best_val_spearman", "test_spearman", "test_pearson"} <= set(saved[m])
    assert {"q01", "q50", "q99", "max"} <= set(saved["setb_z"])
    assert ({"share", "mean_z_with", "mean_z_without"} <= set(saved["gcaug"])
            and "mean_z_by_ugcaug_sites" in saved)
    assert (saved["anchors"] and saved["preset"] == "calibrated"
            and not (tmp_path / "calibration.png").exists())
    # the figure is make_figures.py's, from the JSON
    from common.reporting.plots_q2_data import plot_calibration
    assert plot_calibration(saved, tmp_path / "calibration.png").stat().st_size > 10_000
