"""Q2.3: one model for several RNA-binding proteins, and protein descriptors that transfer to unseen ones."""
import torch
from torch import nn

from .metrics import masked_mse, masked_spearman
from .q2 import predict
from .rna_models import build_rna_model, mlp
from .train import fit, make_adam

K = 5   # k-mer size of the protein descriptors


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
    """(P, 4**k) z-scored log-enrichment of k-mers among each protein's top-bound probes vs all probes.

    Computed from the given split only (the training split): what a new protein's motif data would give."""
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


class MultiProteinModel(nn.Module):
    """RNA encoder (Q2.1 CNN or BiLSTM) x protein encoder -> fusion -> shared head, predicting all P proteins at once.

    protein="identity": a learned embedding per protein id; it cannot say anything about a protein it never
    trained on (its row is never updated). protein="kmer": the protein is described by its k-mer enrichment
    profile, embedded by an MLP, plus a direct k-mer match score (the probe's k-mers summed under the profile);
    both are functions of the profile, so an unseen protein with a profile gets a meaningful prediction.
    Fusion: elementwise product of the projected RNA and protein vectors (lets every protein re-weight
    every RNA feature), concatenated with the match score, then an MLP head."""

    def __init__(self, encoder, encoder_hp, n_proteins, protein="identity", descriptors=None, dim=64, dropout=0.1):
        super().__init__()
        self.rna = build_rna_model(encoder, **encoder_hp, n_out=1)
        d_rna = self.rna.head[0].in_features
        self.rna_proj = nn.Linear(d_rna, dim)
        self.mode = protein
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
            codes = kmer_codes(x, valid)                                      # (B, W)
            prof = self.descriptors.T[codes.clamp(min=0)]                     # (B, W, P)
            match = (prof * (codes >= 0)[..., None]).sum(1)[..., None] * self.match_scale / codes.shape[1]
        return self.head(torch.cat([fused, match.to(fused.dtype)], -1)).squeeze(-1)   # (B, P)


def train_multi(model, data, train_cols, lr, cfg, device, on_epoch=None):
    """Masked MSE over (probe, protein) pairs of the training proteins only; select on their mean val Spearman."""
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
        return {"val_loss": float(masked_mse(p, va["y"], va["y_mask"] * cols)), "val_spearman": sum(sp) / len(sp)}

    return fit(model, optimizer, loss_of_batch, len(tr["y"]), evaluate, cfg, device, on_epoch=on_epoch)
