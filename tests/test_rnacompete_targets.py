"""RNAcompete targets follow the course loader's arithmetic, quirks included (issue 12).

Run: python -m pytest -q tests/test_rnacompete_targets.py

The expected values are computed by hand from the rules, not by any loader: intensities are chosen so that
log(v + shift) is 1, 2, 3, 3 (or 0, 1, 2, 2), whose z-scores (population std) are exact numbers.
"""
import math

import numpy as np
import pandas as pd

from common.rna.format import encode, load_rnacompete, one_hot, preprocess_intensities
from common.rna.simulate import simulate

E = math.e
# logs 1, 2, 3, 3: mean 2.25, population std sqrt(0.6875) = 0.8291562
Z_1233 = [(1 - 2.25) / math.sqrt(0.6875), (2 - 2.25) / math.sqrt(0.6875), 0.75 / math.sqrt(0.6875),
          0.75 / math.sqrt(0.6875)]
# logs 0, 1, 2, 2: same spread, same z
Z_0122 = Z_1233


def test_nan_with_all_positive_values_shifts_by_one():
    # NaN -> 0 before the minimum, so min = 0 and shift = |0| + 1 = 1 (the course's quirk, kept on purpose).
    # v + 1 = e, e^2, e^3, e^3 -> logs 1, 2, 3, 3. The repeated maximum keeps the 99.95th-percentile clip
    # inert.
    y = np.array([E - 1, E**2 - 1, np.nan, E**3 - 1, E**3 - 1])
    z, m = preprocess_intensities(y)
    assert m.tolist() == [1, 1, 0, 1, 1]
    # eps = 1e-6 inside the log and on the std
    np.testing.assert_allclose(z[[0, 1, 3, 4]], Z_1233, atol=2e-5)
    assert z[2] == 0
    # The old rule (shift 0 over valid values) would give log(e - 1) = 0.54 as the smallest log: far from
    # these.


def test_negative_values_shift_by_abs_min_plus_one():
    # min = -1 -> shift 2: v + 2 = 1, e, e^2, e^2 -> logs 0, 1, 2, 2. A NaN (-> 0) does not change the
    # minimum.
    y = np.array([-1.0, E - 2, E**2 - 2, np.nan, E**2 - 2])
    z, m = preprocess_intensities(y)
    np.testing.assert_allclose(z[[0, 1, 2, 4]], Z_0122, atol=2e-5)
    assert m.tolist() == [1, 1, 1, 0, 1] and z[3] == 0


def test_no_nan_and_all_positive_means_no_shift():
    # min = e > 0 -> shift 0: logs 1, 2, 3, 3.
    z, m = preprocess_intensities(np.array([E, E**2, E**3, E**3]))
    np.testing.assert_allclose(z, Z_1233, atol=2e-5)
    assert m.tolist() == [1, 1, 1, 1]


def test_std_has_eps_added():
    # Two values with logs 0 and 2e-6 (v = 1 and e^2e-6, no shift): std = 1e-6, so z = +-1e-6 / (1e-6 + 1e-6)
    # = +-0.5. Dividing by std alone would give +-1.
    z, _ = preprocess_intensities(np.array([1.0 - 1e-6, math.exp(2e-6) - 1e-6, math.exp(2e-6) - 1e-6,
                                            1.0 - 1e-6]))
    np.testing.assert_allclose(z, [-0.5, 0.5, 0.5, -0.5], atol=1e-3)


def test_clip_threshold_from_valid_values_applies_to_nan_zeros():
    # All valid values negative: the percentile (of valid values only) is -3, and the NaN position's 0 is
    # clipped down to -3; the minimum stays -5, so shift = 6 and logs are log(1), log(2), log(3), log(3).
    y = np.array([-5.0, -4.0, np.nan, -3.0, -3.0])
    z, m = preprocess_intensities(y)
    logs = np.log([1.0, 2.0, 3.0, 3.0])
    np.testing.assert_allclose(z[[0, 1, 3, 4]], (logs - logs.mean()) / logs.std(), atol=2e-5)
    assert z[2] == 0


def test_top_outlier_is_clipped_at_the_9995th_percentile():
    # 2001 values: 2000 ones and one 1e6. The 99.95th percentile sits at index 1999, i.e. 1: the outlier
    # becomes 1, every value is equal, std = 0 and z = 0 everywhere (eps keeps it finite).
    z, _ = preprocess_intensities(np.r_[np.ones(2000), 1e6])
    assert np.isfinite(z).all() and np.abs(z).max() < 1e-3


def test_missing_sequence_is_41_n():
    codes, valid = encode(["ACGU", np.nan, None])
    x = one_hot(codes)
    assert valid[1].all() and valid[2].all()   # 41 real positions, not 3 ("nan") and not padding
    assert (x[1] == 0.25).all() and (x[2] == 0.25).all()


def test_loader_targets_use_the_course_rule(tmp_path):
    # On a simulated course-format folder (positive intensities, ~1.5% NaN) every split has NaN, so the shift
    # is 1.
    simulate(tmp_path, seed=5, n_seta=300, n_setb=250, proteins=["RBFOX1"])
    splits, rec = load_rnacompete(tmp_path, ["RBFOX1"], cache_dir=tmp_path / "cache")
    df = pd.read_csv(tmp_path / "norm_data.txt", sep="\t")
    setb = df[df.Probe_Set == "SetB"]["RNCMPT00168"].to_numpy()
    assert np.isnan(setb).any() and np.nanmin(setb) > 0
    v = np.minimum(np.nan_to_num(setb), np.nanpercentile(setb, 99.95))
    logs = np.log(v + 1 + 1e-6)
    ok = ~np.isnan(setb)
    expected = np.where(ok, (logs - logs[ok].mean()) / (logs[ok].std() + 1e-6), 0)
    np.testing.assert_allclose(splits["test"]["y"][:, 0].numpy(), expected, atol=1e-5)
