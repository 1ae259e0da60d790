"""Q1.2 — the Q1.1 CNN with nn.MaxPool2d(2) after each block's ReLU (28 -> 14 -> 7 -> 3), logits and softmax.

Same protocol, flags and outputs as q1_1_cnn.py (this script reuses its main with pool=True), plus a
comparison figure against Q1.1: test accuracy, parameters, total and per-epoch training time.

Reproduce:
    python q1_2_maxpool.py                              # both variants, 200 epochs, seed 0
    python q1_2_maxpool.py --seeds 0 1 2                # mean ± std over three seeds
    python q1_2_maxpool.py --quick                      # smoke run
    BLOODMNIST_NPZ=../shared/data/bloodmnist_pbc.npz python q1_2_maxpool.py --epochs 3

Writes figures/q1_2/<variant>/metrics.json, figures/q1_2/curves.png and figures/q1_2/comparison.png
(the latter needs Q1.1's metrics; without them it says which command to run).

Expected result (README results table): logits ~0.95 test accuracy at the best validation epoch,
with 390,472 parameters (66x fewer than Q1.1) and several times faster epochs.
"""
from common.reporting.plots import plot_q1_comparison
from common.runfiles.files import UserError, exit_on_user_error
from q1_1_cnn import main as q1_main


def main(argv=None):
    opts, experiment = q1_main(argv, pool=True, base="q1_2", description=__doc__)
    q11 = f"{opts.out_dir}/{experiment.replace('q1_2', 'q1_1')}"
    try:
        figure = plot_q1_comparison(q11, f"{opts.out_dir}/{experiment}",
                                    f"{opts.out_dir}/{experiment}/comparison.png")
        print(f"figure: {figure}")
    except UserError as e:
        print(f"comparison figure skipped: {e}")


if __name__ == "__main__":
    exit_on_user_error(main)
