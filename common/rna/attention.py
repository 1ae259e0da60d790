"""Where Q2.2's attention pooling looks: attention mass on RBFOX1 sites, split by where the site sits in the
probe.

A probe's site is its one GCAUG, widened by a U on either side where there is one (the simulator's consensus
is uGCAUGu); probes with no GCAUG, with more than one, or with the secondary motif GCACG anywhere are left out
of the split, so that each probe's mass belongs to one site at one position. The site's centre, as a fraction
of the probe's valid length, puts it in the 5' third, the middle third or the 3' third.

Each bin is set against levels that other attention rules would give on the same site positions:
  chance          uniform weights: the site's share of the valid positions, (e - s) / L;
  position only   the weight that probes with no site (no GCAUG, no GCACG) of the same length put on the
                  positions;
  backward state  weights uniform over positions 0..e-1, what attention that follows the backward LSTM's state
                  ("a site lies ahead") would give: (e - s) / e;
  forward state   weights uniform over positions s..L-1 (a site lies behind): (e - s) / (L - s);
and the flank contrast, the mean weight per site position over the mean weight per position of the 5' flank
(0..s-1), which is about 1 for the backward-state rule and far above 1 for attention on the site.
Only a site mass above all four levels, in every third, with a flank contrast above FLANK_CONTRAST_MIN in
every third, says that the attention finds the site itself (finds_site). STATISTIC_VERSION names this
definition in the records (1: the 6-mer window, no state levels)."""
import re

import numpy as np
import torch

MOTIFS = ("UGCAUG", "GCAUG")
BINS = ("5' third", "middle third", "3' third")
SECONDARY = "GCACG"      # the simulator's weaker motif (UGCACGU): kept out of single-site and no-site probes
STATISTIC_VERSION = 2
FLANK_CONTRAST_MIN = 2.0   # "well above 1": the state rules give about 1
LEVELS = ("chance", "position_only", "backward_state", "forward_state")


def motif_positions(seqs, length):
    """(N, length) bool: positions inside any occurrence of a motif (overlapping occurrences included)."""
    out = np.zeros((len(seqs), length), bool)
    for i, seq in enumerate(seqs):
        for motif in MOTIFS:
            for m in re.finditer(f"(?={motif})", seq):
                out[i, m.start():m.start() + len(motif)] = True
    return out


def single_sites(seqs):
    """Per probe: (start, end, bin index) of its one site, or None (no GCAUG, more than one, or a GCACG)."""
    out = []
    for seq in seqs:
        hits = [m.start() for m in re.finditer("(?=GCAUG)", seq)]
        if len(hits) != 1 or SECONDARY in seq:
            out.append(None)
            continue
        start = hits[0] - 1 if hits[0] > 0 and seq[hits[0] - 1] == "U" else hits[0]
        end = hits[0] + 5
        end += 1 if end < len(seq) and seq[end] == "U" else 0
        centre = (start + end) / 2 / len(seq)
        out.append((start, end, min(int(centre * 3), 2)))
    return out


def attention_weights(model, split, chunk=8192):
    """(N, heads, L) attention weights of an attention-pooling model; zero on padding."""
    model.eval()
    with torch.inference_mode():
        return torch.cat([model.encode(split["x"][s:s + chunk], split["valid"][s:s + chunk],
                                       return_weights=True)[1]
                          for s in range(0, len(split["y"]), chunk)]).float().cpu().numpy()


def per_head_mass(weights, seqs):
    """Each head's mean attention mass on motif positions, over probes with a motif: (heads,) list.

    The statistics below average the heads, which dilutes a head that specialises on the site."""
    motif = motif_positions(seqs, weights.shape[2])
    has = motif.any(1)
    return [float((weights[:, h] * motif).sum(1)[has].mean()) for h in range(weights.shape[1])]


def site_statistics(weights, seqs):
    """The motif-mass statistics: over every probe with a motif, and by the position of a single site.

    weights: (N, L) per-position attention (heads averaged), seqs: the N probes' sequences."""
    length = weights.shape[1]
    motif = motif_positions(seqs, length)
    lengths = np.array([len(s) for s in seqs])
    has = motif.any(1)
    mass = (weights * motif).sum(1)[has]
    chance = (motif.sum(1) / lengths)[has]
    out = {"probes_with_motif": int(has.sum()), "attention_mass_on_motif": float(mass.mean()),
           "chance_fraction": float(chance.mean()), "ratio_to_chance": float(mass.mean() / chance.mean())}
    # Position-only level: the mean weight profile of probes with no site at all, one profile per probe
    # length.
    no_site = np.array([s.find("GCAUG") < 0 and SECONDARY not in s for s in seqs])
    profiles = {n: weights[no_site & (lengths == n)].mean(0) for n in np.unique(lengths)
                if (no_site & (lengths == n)).any()}
    sites = single_sites(seqs)
    by_bin = []
    for b, name in enumerate(BINS):
        rows = [(i, site[0], site[1]) for i, site in enumerate(sites) if site is not None and site[2] == b]
        row = {"bin": name, "probes": len(rows)}
        if rows:
            L = np.array([lengths[i] for i, _, _ in rows], float)
            st, en = np.array([r[1] for r in rows], float), np.array([r[2] for r in rows], float)
            m = np.array([weights[i, s:e].sum() for i, s, e in rows])
            levels = {"chance": (en - st) / L,
                      "position_only": np.array([profiles[lengths[i]][s:e].sum() if lengths[i] in profiles
                                                 else np.nan for i, s, e in rows]),
                      "backward_state": (en - st) / en, "forward_state": (en - st) / (L - st)}
            row["attention_mass"] = float(m.mean())
            for k, v in levels.items():
                row[k] = float(np.nanmean(v))
                row[f"ratio_to_{k}"] = float(m.mean() / np.nanmean(v))
            flank = [(weights[i, s:e].mean(), weights[i, :s].mean()) for i, s, e in rows if s > 0]
            denominator = np.mean([f for _, f in flank]) if flank else 0.0
            row["flank_contrast"] = (float(np.mean([a for a, _ in flank]) / denominator) if denominator > 0
                                     else None)
            row["probes_with_5prime_flank"] = len(flank)
        by_bin.append(row)
    out["single_site_probes_by_position"] = by_bin
    out["probes_without_site_for_position_level"] = int(no_site.sum())
    out["statistic_version"] = STATISTIC_VERSION
    return out


def map_probes(weights, seqs, predictions, per_bin=3):
    """The highest-predicted single-site probes of each position bin, for the attention-map figure."""
    sites = single_sites(seqs)
    order = np.argsort(-np.asarray(predictions))
    motif = motif_positions(seqs, weights.shape[1])
    out = []
    for b, name in enumerate(BINS):
        picked = [i for i in order if sites[i] is not None and sites[i][2] == b][:per_bin]
        out += [{"sequence": seqs[i], "prediction": float(predictions[i]), "site_bin": name,
                 "weights": weights[i][:len(seqs[i])].tolist(), "motif": motif[i][:len(seqs[i])].tolist()}
                for i in picked]
    return out


def finds_site(attention):
    """Whether a record's attention finds the site itself (the rule in this module's docstring): True, False,
    or None for a record without the by-position statistic (version 1)."""
    bins = [b for b in attention.get("single_site_probes_by_position", []) if b["probes"]]
    if not bins or any(f"ratio_to_{k}" not in b for b in bins for k in LEVELS):
        return None
    return all(min(b[f"ratio_to_{k}"] for k in LEVELS) > 1 and (b["flank_contrast"] or 0) > FLANK_CONTRAST_MIN
               for b in bins)
