"""Q2 plumbing shared by the Q2 scripts: data on the device, predictions, one training run per config."""
from pathlib import Path

import torch

from common.rna.format import course_files, load_rnacompete, one_hot
from common.rna.models import build_rna_model
from common.rna.simulate import is_default, simulate
from common.runfiles.files import UserError, read_json
from common.training.loop import fit, make_adam
from common.training.metrics import masked_mse, masked_spearman, regression_report

DEFAULT_COURSE_DIR = "data/rnacompete"
SIMULATED_DIR = "data/simulated"


def resolve_data_dir(data_dir, explicit):
    """The course files if present; else (only when --data-dir was not given) the simulated set, made once."""
    if course_files(data_dir):
        return data_dir
    if explicit:
        raise UserError(f"no norm_data.txt + metadata.xlsx in {data_dir}: get the real files with "
                        f"`python -m common.rna.download --out {data_dir}`, or drop --data-dir to use "
                        f"the simulator (python -m common.rna.simulate --out {SIMULATED_DIR})")
    print(f"notice: no course files in {data_dir}. "
          f"For the real RNAcompete data (public, Ray et al. 2013) run `python -m common.rna.download` "
          f"(or copy the course's norm_data.txt and metadata.xlsx there). "
          f"Falling back to the simulated set in {SIMULATED_DIR}: results are labelled 'simulated'.")
    if not is_default(SIMULATED_DIR):   # missing, or written by an older simulator or calibration
        print(f"notice: generating the default simulated set (preset calibrated) in {SIMULATED_DIR} "
              "(about 20 s)")
        simulate(SIMULATED_DIR)
    return SIMULATED_DIR


def load_q2(data_dir, proteins, device, quick=False):
    """Tensors on the device and the data record; the file's warnings are printed on every run (also from
    cache). data_dir: the --data-dir flag (None: the course files in data/rnacompete, else the simulated set),
    or a folder that resolve_data_dir() already gave. quick: the first 2,000 probes of each split."""
    data_dir = resolve_data_dir(data_dir or DEFAULT_COURSE_DIR, data_dir is not None)
    splits, record = load_rnacompete(data_dir, proteins, cache_dir=str(Path("data") / "cache"))
    for line in record["warnings"]:
        print(f"data warning: {line}")
    on_device = {s: device_split(v, device, quick) for s, v in splits.items()}
    return on_device, record


def device_split(split, device, quick=False, quick_n=2000):
    n = min(len(split["y"]), quick_n) if quick else len(split["y"])
    return {"x": one_hot(split["codes"][:n]).to(device), "valid": split["valid"][:n].to(device),
            "y": split["y"][:n].to(device), "y_mask": split["y_mask"][:n].to(device),
            "rows": split["rows"][:n]}


def predict(model, split, chunk=8192):
    """(N, P) or (N,) predictions in large chunks; call under inference_mode."""
    return torch.cat([model(split["x"][s:s + chunk], split["valid"][s:s + chunk]).float()
                      for s in range(0, len(split["y"]), chunk)])


def targets(split, col):
    """Target and mask of one protein column (col int) or of all columns (col None)."""
    if col is None:
        return split["y"], split["y_mask"]
    return split["y"][:, col], split["y_mask"][:, col]


def train_rna(name, model_hp, lr, data, cfg, device, *, col=0, on_epoch=None, ckpt=None, resume=False,
              ckpt_every=1):
    """Train one Q2 model config with the shared loop; select on validation Spearman
    (ckpt: --resume checkpoint)."""
    torch.manual_seed(cfg.seed)
    model = build_rna_model(name, **model_hp).to(device)
    optimizer = make_adam(model.parameters(), lr, device)
    tr, va = data["train"], data["val"]
    y, ym = targets(tr, col)
    yv, ymv = targets(va, col)

    def loss_of_batch(m, idx):
        return masked_mse(m(tr["x"][idx], tr["valid"][idx]).float(), y[idx], ym[idx])

    def evaluate(m):
        p = predict(m, va)
        return {"val_loss": float(masked_mse(p, yv, ymv)),
                "val_spearman": masked_spearman(p.flatten(), yv.flatten(), ymv.flatten())}

    result = fit(model, optimizer, loss_of_batch, len(y), evaluate, cfg, device, ckpt_path=ckpt,
                 resume=resume, on_epoch=on_epoch, ckpt_every=ckpt_every)
    return model, result


def test_report(model, state, split, col=0):
    """Test metrics of the selected (best-validation) weights, computed once."""
    model.load_state_dict(state)
    model.eval()
    with torch.inference_mode():
        p = predict(model, split)
    yt, ymt = targets(split, col)
    return regression_report(p, yt, ymt)


def q2_1_selection(path, model, flag, otherwise):
    """(hyperparameters, lr, batch size) of the configuration that the Q2.1 search selected for `model`, from
    its record at path; a missing record is one UserError naming `flag` and what to do `otherwise`."""
    if not Path(path).is_file():
        raise UserError(f"{flag} reads Q2.1's selected {model} from {path}, which is missing: run "
                        f"`python q2_1_cnn_lstm.py --model {model}` first, {otherwise}")
    c = read_json(path)["config"]
    return dict(c["hp"]), c["lr"], c["batch_size"]
