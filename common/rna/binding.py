"""The binding model of the calibrated RNAcompete simulator (preset "calibrated", the default Q2 data).

Per protein and probe (N probes, W = 35 windows of 7 nt, codes 0-3 = A, C, G, U):
- affinity: Kd of every 7-mer from a position-specific energy model around the protein's consensus
  (ln Kd = ln Kd0 + sum of per-position mismatch penalties), an idiosyncratic lognormal jitter per 7-mer,
  capped at a non-specific Kd; the 7-mers Auweter et al. 2006 measured keep their measured Kd. So there is
  a graded spectrum of intermediate affinities, not a handful of listed sites;
- occupancy theta = c / (c + Kd) per window, times an accessibility factor (a window whose central 5-mer
  can pair with a 5-mer elsewhere in the probe is structured and binds less);
- spacing: of two strong windows (theta above a threshold) closer than the footprint of one protein, the
  weaker one is occluded; just beyond the footprint it is partly hindered (the factor rises linearly to 1);
- occupancies add up over windows (binding grows about linearly with the number of sites);
- a probe-level background shared by every protein: composition (G/U stickiness), a structure term and a
  smooth sequence term (a fixed random weight per 4-mer, summed over the probe), plus a probe effect that
  no sequence explains (the same probe is bright or dim on every array);
- heteroscedastic noise: multiplicative (lognormal) plus additive, so dim probes are relatively noisier.
Every constant names the anchor it was set from; `simulation.json` records them all.
"""
import numpy as np

BASES = "ACGU"
K = 7


def kmer_codes(seq_codes, k):
    """(N, L) base codes -> (N, L-k+1) integer codes of every k-mer (base 4, first base most significant)."""
    n, length = seq_codes.shape
    out = np.zeros((n, length - k + 1), np.int64)
    for t in range(k):
        out = out * 4 + seq_codes[:, t:length - k + 1 + t]
    return out


def all_kmers(k=K):
    """(4**k, k) base codes of every k-mer, in kmer_codes order."""
    c = np.arange(4 ** k)
    return np.stack([(c >> (2 * (k - 1 - t))) & 3 for t in range(k)], 1)


def pwm_kd_table(consensus, penalties, kd0, measured, cap, jitter_sd, rng):
    """Kd (nM) of each of the 4**7 7-mers.

    consensus: 7 letters (N = any base); penalties: (7, 4) ln-Kd increase of each base at each position
    (0 at the consensus base); measured: {7-mer: Kd} that override the model; jitter_sd: sd of a
    lognormal factor per 7-mer (idiosyncratic affinities the additive model misses)."""
    kmers = all_kmers()
    ln_kd = np.log(kd0) + np.asarray(penalties)[np.arange(K)[None, :], kmers].sum(1)
    ln_kd += rng.normal(0.0, jitter_sd, len(ln_kd))
    kd = np.minimum(np.exp(ln_kd), cap)
    for site, value in measured.items():
        kd[sum(BASES.index(b) * 4 ** (K - 1 - t) for t, b in enumerate(site))] = value
    return kd


def penalty_matrix(consensus, core, flank, exceptions):
    """(7, 4) ln-Kd penalties: `core` at consensus positions in upper case, `flank` in lower case, 0 at 'N'
    and at the consensus base; exceptions {(position, base): penalty} from measured single substitutions."""
    pen = np.zeros((K, 4))
    for t, b in enumerate(consensus):
        if b.upper() == "N":
            continue
        pen[t] = core if b.isupper() else flank
        pen[t, BASES.index(b.upper())] = 0.0
    for (t, b), v in exceptions.items():
        pen[t, BASES.index(b)] = v
    return pen


def accessibility(seq_codes, lengths, penalty, chunk=20000):
    """(N, W) factor per 7-mer window: penalty where its central 5-mer can pair elsewhere in the probe."""
    comp = np.array([3, 2, 1, 0])            # A-U, C-G
    n, length = seq_codes.shape
    w = length - K + 1
    c5 = kmer_codes(seq_codes, 5)                                   # (N, L-4)
    # rc5[:, p] is the reverse complement of the 5-mer starting at p (reversing twice realigns the index)
    rc5 = kmer_codes(comp[seq_codes[:, ::-1]], 5)[:, ::-1]
    # central 5-mer of window j starts at j + 1
    centre = rc5[:, 1:1 + w]
    p = np.arange(c5.shape[1])
    far = np.abs(p[None, :] - (np.arange(w) + 1)[:, None]) >= 5 + 3  # (W, P): no overlap, loop >= 3 nt
    valid5 = p[None, :] + 5 <= lengths[:, None]                     # (N, P)
    out = np.ones((n, w))
    for s in range(0, n, chunk):
        hit = ((centre[s:s + chunk, :, None] == c5[s:s + chunk, None, :]) & far[None]
               & valid5[s:s + chunk, None, :])
        out[s:s + chunk][hit.any(2)] = penalty
    return out


def spacing_factors(theta, strong, footprint, ramp):
    """(N, W) factor per window from its distance to a stronger strong window.

    A strong window (theta >= strong) closer than `footprint` nt (start to start) to a stronger one is
    occluded (factor 0: one protein covers both); at footprint <= d < footprint + ramp it is hindered, the
    factor rising linearly from 1/(ramp + 1) to 1. Windows that are not strong are left as they are."""
    n, w = theta.shape
    out = np.ones_like(theta)
    is_strong = theta >= strong
    for d in range(1, min(w, footprint + ramp)):
        f = 0.0 if d < footprint else (d - footprint + 1) / (ramp + 1)
        a, b = theta[:, :-d], theta[:, d:]                          # windows j and j + d
        both = is_strong[:, :-d] & is_strong[:, d:]
        weaker_left = both & (a < b)
        weaker_right = both & (a >= b)
        out[:, :-d] = np.where(weaker_left, np.minimum(out[:, :-d], f), out[:, :-d])
        out[:, d:] = np.where(weaker_right, np.minimum(out[:, d:], f), out[:, d:])
    return out


def paired_fraction(access, in_probe, penalty):
    """Share of a probe's windows that are structured (a crude per-probe fold score)."""
    return ((access == penalty) & in_probe).sum(1) / in_probe.sum(1)


def shared_background(codes, lengths, fractions, paired, params, rng):
    """(ln background, probe effect), each (N,), the same for every protein: composition + structure + 4-mer
    term (learnable from sequence) + a probe effect (not learnable: no sequence explains it)."""
    k4 = kmer_codes(codes, 4)                                        # (N, L-3)
    in_probe = np.arange(k4.shape[1])[None, :] + 4 <= lengths[:, None]
    w4 = rng.normal(0.0, 1.0, 4 ** 4)
    seq_term = (w4[k4] * in_probe).sum(1) / np.sqrt(in_probe.sum(1))   # ~ N(0, 1) per probe
    seq_term = (seq_term - seq_term.mean()) / seq_term.std()
    comp = fractions @ np.asarray(params["background_composition_ACGU"])
    struct = params["background_structure"] * paired
    probe = rng.normal(0.0, params["background_probe_sd"], len(codes))
    return comp + struct + params["background_kmer_sd"] * seq_term + probe, probe


def occupancy(windows, access, in_probe, kd_table, params):
    """(N,) summed occupancy of one protein over the windows of each probe (affinity, structure, spacing)."""
    theta = params["concentration_nM"] / (params["concentration_nM"] + kd_table[windows])
    theta = theta * access * in_probe
    theta = theta * spacing_factors(theta, params["spacing_strong_theta"], params["spacing_footprint_nt"],
                                    params["spacing_ramp_nt"])
    return theta.sum(1)


def measure(signal, params, rng):
    """Heteroscedastic measurement: signal * lognormal(0, mult_sd) + normal(0, add_sd * scale)."""
    n = len(signal)
    return (signal * np.exp(rng.normal(0.0, params["noise_mult_sd"], n))
            + rng.normal(0.0, params["noise_add_sd"], n))
