"""Q2.3: one model for several RNA-binding proteins, the protein profiles that let it score a new protein,
and the profile-only baseline (a probe scored by its protein's profile alone, no learned weights)."""
from pathlib import Path

import torch
from torch import nn

from common.rna.fit import predict, q2_1_selection
from common.rna.models import (
    HOMEWORK_DEFAULT_BATCH,
    HOMEWORK_DEFAULT_HP,
    HOMEWORK_DEFAULT_LR,
    build_rna_model,
    mlp,
)
from common.runfiles.files import read_json
from common.training.loop import fit, make_adam
from common.training.metrics import masked_mse, masked_spearman, regression_report

K = 5   # k-mer size of the protein descriptors


def protein_label(name, record):
    """A protein's name for tables and figures: the simulator's invented motifs say so."""
    return (f"{name} (simulated motif)" if record.get("source") == "simulated" and name.startswith("sim-")
            else name)


def kmer_codes(x, valid, k=K):
    """One-hot (B, L, 4) -> (B, L-k+1) k-mer codes in [0, 4**k), and -1 where a window has padding or N."""
    base = x.argmax(-1)
    ok = valid & (x.amax(-1) == 1)                                      # a real A/C/G/U
    w = x.shape[1] - k + 1
    code = torch.zeros(x.shape[0], w, dtype=torch.long, device=x.device)
    good = torch.ones(x.shape[0], w, dtype=torch.bool, device=x.device)
    for t in range(k):
        code = code * 4 + base[:, t:t + w]
        good &= ok[:, t:t + w]
    return code.masked_fill(~good, -1)


def kmer_descriptors(split, k=K, top_fraction=0.01):
    """(P, 4**k) profiles: per protein, the z-scored log2-enrichment of k-mers among its top-bound probes vs all probes.

    The rule, exactly (tests/test_q2_extra.py recomputes it from the sequences as strings):
    - probes: those of `split` (Q2.3 passes the TRAINING split) with a measured intensity for the protein;
    - top: the max(1, int(top_fraction * n)) probes with the highest intensity (torch.topk);
    - counts: every k-mer window lying inside the probe and free of N, plus a pseudocount of 1 per k-mer;
    - e = log2(top frequency) - log2(all-probe frequency); profile = (e - mean(e)) / std(e) (ddof 1).
    A protein's profile is made from its own measured intensities: a new protein needs its own RNAcompete run."""  # noqa: E501
    codes = kmer_codes(split["x"], split["valid"], k)
    def freq(rows):
        c = codes[rows].flatten()
        return torch.bincount(c[c >= 0], minlength=4 ** k).float() + 1.0
    out = []
    for j in range(split["y"].shape[1]):
        valid_rows = split["y_mask"][:, j].bool()
        y = split["y"][:, j].masked_fill(~valid_rows, float("-inf"))
        top = torch.topk(y, max(1, int(top_fraction * int(valid_rows.sum())))).indices
        e = torch.log2(freq(top) / freq(top).sum()) - torch.log2(freq(valid_rows) / freq(valid_rows).sum())
        out.append((e - e.mean()) / e.std())
    return torch.stack(out)


def profile_scores(x, valid, profiles, chunk=65536):
    """(N, P) profile match of each probe: the sum of the protein's profile over the probe's valid k-mer windows.

    With no learned weight, this is the profile-only baseline; the few-shot model gets the same sum as one input."""  # noqa: E501
    out = []
    for s in range(0, len(x), chunk):
        codes = kmer_codes(x[s:s + chunk], valid[s:s + chunk])                   # (B, W), -1 = no k-mer there
        out.append((profiles.T[codes.clamp(min=0)] * (codes >= 0)[..., None]).sum(1))   # (B, P)
    return torch.cat(out)


class MultiProteinModel(nn.Module):
    """RNA encoder (Q2.1 CNN or BiLSTM) x protein encoder -> fusion -> shared head, predicting all P proteins
    at once.

    protein="identity": a learned embedding per protein id; it cannot say anything about a protein it never
    trained on (its row is never updated). protein="profile": the protein is described by its k-mer profile
    (kmer_descriptors), embedded by an MLP, plus the profile match (profile_scores) as one more input; both
    are functions of the profile, so a new protein that comes with its own profile gets a prediction
    (few-shot). Fusion: elementwise product of the projected RNA and protein vectors (lets every protein
    re-weight every RNA feature), concatenated with the match score, then an MLP head."""

    def __init__(self, encoder, encoder_hp, n_proteins, protein="identity", descriptors=None, dim=64,
                 dropout=0.1):
        super().__init__()
        self.rna = build_rna_model(encoder, **encoder_hp, n_out=1)
        d_rna = self.rna.head[0].in_features
        self.rna_proj = nn.Linear(d_rna, dim)
        self.mode = protein
        if protein not in ("identity", "profile"):
            raise ValueError(f"protein must be 'identity' or 'profile', got {protein!r}")
        if protein == "identity":
            self.embed = nn.Embedding(n_proteins, dim)
        else:
            self.register_buffer("descriptors", descriptors.float())       # (P, 4**K)
            self.embed = nn.Sequential(nn.Linear(descriptors.shape[1], dim), nn.ReLU(), nn.Linear(dim, dim))
            self.match_scale = nn.Parameter(torch.tensor(0.1))
        self.head = mlp(dim + 1, dim, dropout)

    def protein_vectors(self):
        return self.embed.weight if self.mode == "identity" else self.embed(self.descriptors)   # (P, dim)

    def forward(self, x, valid):
        r = torch.relu(self.rna_proj(self.rna.encode(x, valid)))             # (B, dim)
        p = self.protein_vectors()                                            # (P, dim)
        fused = r[:, None, :] * p[None, :, :]                                 # (B, P, dim)
        if self.mode == "identity":
            match = torch.zeros(*fused.shape[:2], 1, device=x.device, dtype=fused.dtype)
        else:
            match = (profile_scores(x, valid, self.descriptors)[..., None] * self.match_scale
                     / (x.shape[1] - K + 1))
        return self.head(torch.cat([fused, match.to(fused.dtype)], -1)).squeeze(-1)   # (B, P)


def train_multi(model, data, train_cols, lr, cfg, device, *, on_epoch=None, ckpt=None, resume=False):
    """Masked MSE over (probe, protein) pairs of the training proteins only; select on their mean val
    Spearman."""
    model.to(device)
    optimizer = make_adam(model.parameters(), lr, device)
    tr, va = data["train"], data["val"]
    cols = torch.zeros(tr["y"].shape[1], device=device)
    cols[train_cols] = 1.0                                                    # held-out proteins: weight 0

    def loss_of_batch(m, idx):
        return masked_mse(m(tr["x"][idx], tr["valid"][idx]).float(), tr["y"][idx], tr["y_mask"][idx] * cols)

    def evaluate(m):
        p = predict(m, va)
        sp = [masked_spearman(p[:, j], va["y"][:, j], va["y_mask"][:, j]) for j in train_cols]
        return {"val_loss": float(masked_mse(p, va["y"], va["y_mask"] * cols)),
                "val_spearman": sum(sp) / len(sp)}

    return fit(model, optimizer, loss_of_batch, len(tr["y"]), evaluate, cfg, device, ckpt_path=ckpt,
               resume=resume, on_epoch=on_epoch)


REAL_PROTEINS = ["RBFOX1", "PUM1", "HNRNPA1", "QKI", "ELAVL1", "SRSF1"]   # Q2.3's default on the course files


def default_proteins(data_dir):
    """Every protein of the simulated set, or the real default list on the course files."""
    sim = Path(data_dir) / "simulation.json"
    return list(read_json(sim)["proteins"]) if sim.is_file() else list(REAL_PROTEINS)


def per_protein_test(model, split, names):
    model.eval()
    with torch.inference_mode():
        p = predict(model, split)
    return dict(zip(names, regression_report(p, split["y"], split["y_mask"])))


def encoder_config(encoder, which, q2_1_dir, lr=None, batch_size=None):
    """(hyperparameters, lr, batch size, where they come from) of the RNA encoder; lr, batch_size: --lr and
    --batch-size, which override the configuration's."""
    if which == "default":
        hp, lr0, batch0, source = (dict(HOMEWORK_DEFAULT_HP[encoder]), HOMEWORK_DEFAULT_LR,
                                   HOMEWORK_DEFAULT_BATCH, "homework default")
    else:
        path = Path(q2_1_dir) / encoder / "metrics.json"
        hp, lr0, batch0 = q2_1_selection(path, encoder, "--encoder-config selected",
                                         "or pass --encoder-config default")
        source = f"Q2.1 selected ({path})"
    return hp, lr or lr0, batch_size or batch0, source
