"""Where Q2.2's attention pooling looks: attention mass on RBFOX1 sites, split by where the site sits in the probe.

A probe's site is its one GCAUG (with the U before it when there is one, UGCAUG); probes with no GCAUG, or with more
than one, are left out of the split, so that each probe's mass belongs to one site at one position. The site's
centre, as a fraction of the probe's valid length, puts it in the 5' third, the middle third or the 3' third.

Each bin is set against two levels: chance (the site's share of the valid positions, what uniform weights give)
and position alone (the weight that probes *without* a site of the same length put on the same positions). An
attention that follows the backward LSTM's state ("a site lies ahead") rather than the site would sit at the
position level, not above it."""
import re

import numpy as np
import torch

MOTIFS = ("UGCAUG", "GCAUG")
BINS = ("5' third", "middle third", "3' third")


def motif_positions(seqs, length):
    """(N, length) bool: positions inside any occurrence of a motif (overlapping occurrences included)."""
    out = np.zeros((len(seqs), length), bool)
    for i, seq in enumerate(seqs):
        for motif in MOTIFS:
            for m in re.finditer(f"(?={motif})", seq):
                out[i, m.start():m.start() + len(motif)] = True
    return out


def single_sites(seqs):
    """Per probe: (start, end, bin index) of its one site, or None (no GCAUG, or more than one)."""
    out = []
    for seq in seqs:
        hits = [m.start() for m in re.finditer("(?=GCAUG)", seq)]
        if len(hits) != 1:
            out.append(None)
            continue
        start = hits[0] - 1 if hits[0] > 0 and seq[hits[0] - 1] == "U" else hits[0]
        end = hits[0] + 5
        centre = (start + end) / 2 / len(seq)
        out.append((start, end, min(int(centre * 3), 2)))
    return out


def attention_weights(model, split, chunk=8192):
    """(N, L) attention weights of an attention-pooling model, heads averaged; zero on padding."""
    model.eval()
    with torch.inference_mode():
        return torch.cat([model.encode(split["x"][s:s + chunk], split["valid"][s:s + chunk], return_weights=True)[1].mean(1)
                          for s in range(0, len(split["y"]), chunk)]).float().cpu().numpy()


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
    # Position-only level: the mean weight profile of probes with no GCAUG at all, one profile per probe length.
    no_site = np.array([s.find("GCAUG") < 0 for s in seqs])
    profiles = {n: weights[no_site & (lengths == n)].mean(0) for n in np.unique(lengths) if (no_site & (lengths == n)).any()}
    sites = single_sites(seqs)
    by_bin = []
    for b, name in enumerate(BINS):
        rows = [(i, site[0], site[1]) for i, site in enumerate(sites) if site is not None and site[2] == b]
        row = {"bin": name, "probes": len(rows)}
        if rows:
            m = np.array([weights[i, s:e].sum() for i, s, e in rows])
            c = np.array([(e - s) / lengths[i] for i, s, e in rows])
            pos = np.array([profiles[lengths[i]][s:e].sum() if lengths[i] in profiles else np.nan for i, s, e in rows])
            row.update(attention_mass=float(m.mean()), chance=float(c.mean()), ratio_to_chance=float(m.mean() / c.mean()),
                       position_only=float(np.nanmean(pos)), ratio_to_position_only=float(m.mean() / np.nanmean(pos)))
        by_bin.append(row)
    out["single_site_probes_by_position"] = by_bin
    out["probes_without_site_for_position_level"] = int(no_site.sum())
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
                 "weights": weights[i][:len(seqs[i])].tolist(), "motif": motif[i][:len(seqs[i])].tolist()} for i in picked]
    return out
