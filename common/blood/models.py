"""Models. Q1: the homework CNN for BloodMNIST (with and without MaxPool, with and without Softmax)."""
from torch import nn

# The homework's Q1 protocol for these models (Adam, CrossEntropyLoss): the flags' defaults in every Q1
# script.
HOMEWORK_PROTOCOL = {"epochs": 200, "batch_size": 64, "lr": 1e-3}


class BloodCNN(nn.Module):
    """Three conv blocks 3->32->64->128 (3x3, stride 1, pad 1, ReLU[, MaxPool2d(2)]) -> Linear 256 -> ReLU
    -> Linear 8.

    softmax=True appends nn.Softmax(dim=1), reproducing the homework's deliberate mistake of feeding
    probabilities to CrossEntropyLoss. Parameters: 25,785,672 without pooling, 390,472 with it."""

    def __init__(self, pool=False, softmax=False, n_classes=8):
        super().__init__()
        layers, chans = [], [3, 32, 64, 128]
        for c_in, c_out in zip(chans, chans[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=1, padding=1), nn.ReLU()]
            if pool:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        side = 3 if pool else 28   # 28 -> 14 -> 7 -> 3 with pooling
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(128 * side * side, 256), nn.ReLU(),
                                  nn.Linear(256, n_classes))
        self.softmax = nn.Softmax(dim=1) if softmax else nn.Identity()

    def forward(self, x):  # (B, 3, 28, 28) -> (B, 8)
        return self.softmax(self.head(self.features(x)))


def count_params(model):
    return sum(p.numel() for p in model.parameters())
