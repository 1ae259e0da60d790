"""Masked regression metrics. Masks are float or bool tensors with 1 where the target is valid."""
import torch


def masked_mse(pred, target, mask):
    """Mean squared error over the valid entries only."""
    mask = mask.to(pred.dtype)
    return ((pred - target) ** 2 * mask).sum() / mask.sum().clamp(min=1)


def average_ranks(x):
    """Ranks 1..n with ties given their average rank (as scipy.stats.rankdata's default)."""
    _, inverse, counts = torch.unique(x, sorted=True, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).to(torch.float64)
    return (ends - (counts - 1) / 2.0)[inverse]


def pearson(a, b):
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp(min=1e-300))


def masked_spearman(pred, target, mask):
    """Spearman rank correlation over valid entries; equals scipy.stats.spearmanr on them."""
    keep = mask.bool()
    return pearson(average_ranks(pred[keep].float()), average_ranks(target[keep].float()))


def masked_pearson(pred, target, mask):
    keep = mask.bool()
    return pearson(pred[keep], target[keep])


def regression_report(pred, target, mask):
    """{spearman, pearson, mse} per column of (N, P) predictions; a 1-column input gives plain floats."""
    pred, target, mask = (t.reshape(len(t), -1) for t in (pred, target, mask))
    cols = [{"spearman": masked_spearman(pred[:, j], target[:, j], mask[:, j]),
             "pearson": masked_pearson(pred[:, j], target[:, j], mask[:, j]),
             "mse": float(masked_mse(pred[:, j], target[:, j], mask[:, j]))} for j in range(pred.shape[1])]
    return cols[0] if len(cols) == 1 else cols
