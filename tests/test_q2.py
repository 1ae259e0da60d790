"""Q2 tests: encoding, preprocessing, split, cache, metrics, models, simulator, loader errors, smoke run.

Run: python -m pytest -q tests/test_q2.py
"""
import inspect
import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ROOT
from scipy.stats import pearsonr, spearmanr

from common.rna.format import encode, load_rnacompete, one_hot, preprocess_intensities, split_setA
from common.rna.models import HOMEWORK_DEFAULT_HP, RNACNN, RNALSTM
from common.rna.simulate import simulate
from common.runfiles.files import UserError
from common.training.metrics import masked_mse, masked_pearson, masked_spearman


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    simulate(d, seed=3, n_seta=400, n_setb=300)
    return d


def test_one_hot_encoding_letters_n_padding():
    codes, valid = encode(["ACGU", "NAXc"], max_len=6)
    x = one_hot(codes)
    assert x.shape == (2, 6, 4)
    torch.testing.assert_close(x[0, :4], torch.eye(4))
    assert x[1, 0].tolist() == [0.25] * 4 and x[1, 2].tolist() == [0.25] * 4      # N and X
    assert x[1, 1].tolist() == [1, 0, 0, 0] and x[1, 3].tolist() == [0, 1, 0, 0]  # lower case accepted
    assert x[0, 4:].eq(0).all() and valid[0].tolist() == [True] * 4 + [False] * 2


def test_truncation_warns_with_a_count():
    with pytest.warns(UserWarning, match="2 sequences longer than 41"):
        codes, valid = encode(["A" * 45, "C" * 41, "G" * 50])
    assert codes.shape == (3, 41) and valid.all()


def test_preprocessing_matches_a_hand_computed_example():
    y = np.array([-2.0, 0.0, 3.0, np.nan, 7.0])
    z, m = preprocess_intensities(y)
    assert m.tolist() == [1, 1, 1, 0, 1]
    valid = np.array([-2.0, 0.0, 3.0, 7.0])
    valid = np.minimum(valid, np.percentile(valid, 99.95))   # clips 7 to 6.994
    assert valid[-1] == pytest.approx(7 - 0.0005 * 3 * 4, rel=1e-9)
    logs = np.log(valid + 3 + 1e-6)                           # shift = |-2| + 1
    expected = (logs - logs.mean()) / logs.std()
    np.testing.assert_allclose(z[[0, 1, 2, 4]], expected, rtol=1e-5)
    assert z[3] == 0
    z2, _ = preprocess_intensities(np.array([1.0, 2.0, 4.0]))   # min > 0: no shift
    logs = np.log(np.minimum([1, 2, 4], np.percentile([1, 2, 4], 99.95)) + 1e-6)
    np.testing.assert_allclose(z2, (logs - logs.mean()) / logs.std(), rtol=1e-5)


def test_split_sizes_determinism_disjointness():
    tr, va = split_setA(120_326)
    assert (len(tr), len(va)) == (96_261, 24_065)
    tr2, va2 = split_setA(120_326)
    assert (tr == tr2).all() and (va == va2).all()
    assert not set(tr) & set(va) and len(set(tr) | set(va)) == 120_326


def test_masked_mse_ignores_masked_entries():
    pred, target = torch.tensor([1.0, 2.0, 100.0]), torch.tensor([0.0, 2.0, -50.0])
    assert masked_mse(pred, target, torch.tensor([1.0, 1.0, 0.0])).item() == pytest.approx(0.5)


def test_spearman_and_pearson_equal_scipy_with_ties():
    g = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 6, (500,), generator=g).float()           # many ties
    target = pred + torch.randn(500, generator=g) * 3
    target[::7] = 1.0                                                 # ties in the target too
    mask = torch.rand(500, generator=g) > 0.2
    keep = mask.numpy()
    assert masked_spearman(pred, target, mask) == pytest.approx(
        spearmanr(pred.numpy()[keep], target.numpy()[keep]).statistic, abs=1e-12)
    assert masked_pearson(pred, target, mask) == pytest.approx(
        pearsonr(pred.double().numpy()[keep], target.double().numpy()[keep]).statistic, abs=1e-9)


def test_the_model_classes_default_to_the_homework_configurations():
    """RNACNN() and RNALSTM() are the homework defaults that Q2.1's trial 0, the baselines and Q2.2's default
    setting use (HOMEWORK_DEFAULT_HP), so the two cannot drift apart."""
    for cls, name in ((RNACNN, "cnn"), (RNALSTM, "lstm")):
        params = inspect.signature(cls).parameters
        assert {k: params[k].default for k in HOMEWORK_DEFAULT_HP[name]} == HOMEWORK_DEFAULT_HP[name]


@pytest.mark.cpu_float
@pytest.mark.parametrize("model", [RNACNN(), RNALSTM(), RNALSTM(layers=2), RNALSTM(attention_heads=3),
                                   RNALSTM(self_attention_heads=4)])
def test_padding_never_changes_a_prediction(model):
    model.eval()
    codes, valid = encode(["ACGUACGUGCAUGUACGUACGUACGUACGUACGUACGUA", "GCAUG" * 8, "UUUU" * 10])
    x = one_hot(codes)
    longer = (torch.cat([x, torch.zeros(3, 7, 4)], 1),
              torch.cat([valid, torch.zeros(3, 7, dtype=torch.bool)], 1))
    torch.testing.assert_close(model(x, valid), model(*longer), rtol=0, atol=1e-6)
    shorter = model(x[:1, :39], valid[:1, :39])                          # the first sequence is 39 nt
    torch.testing.assert_close(model(x[:1], valid[:1]), shorter, rtol=0, atol=1e-6)


@pytest.mark.parametrize("hp, params", [
    ({}, 44_161),                             # 2 x LSTM(4, 64) 2 x 17,920 + MLP 128 -> 64 -> 1 8,321
    ({"attention_heads": 1}, 52_482),         # + scorer 128 -> 64 -> 1 (8,321)
    ({"attention_heads": 4}, 77_253),         # scorer 128 -> 64 -> 4 (8,516), MLP 512 -> 64 -> 1 (32,897)
    ({"self_attention_heads": 4}, 110_465),   # + MHA in 3 x 128 x 129, out 128 x 129, LayerNorm 256
])
def test_q2_2_bilstm_variants_have_exact_parameter_counts(hp, params):
    assert sum(p.numel() for p in RNALSTM(**hp).parameters()) == params


def test_self_attention_block_rejects_heads_that_do_not_divide_the_state_width():
    with pytest.raises(ValueError, match="must divide the state width"):
        RNALSTM(hidden=49, self_attention_heads=4)
    with pytest.raises(ValueError, match="exclude each other"):
        RNALSTM(attention_heads=1, self_attention_heads=4)


def packed_lstm_pair():
    """Our BiLSTM's states and a packed nn.LSTM(bidirectional=True)'s, with the same weights (seed 0)."""
    torch.manual_seed(0)
    m = RNALSTM(hidden=8).eval()
    ref = torch.nn.LSTM(4, 8, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(ref, n).copy_(getattr(m.fwd[0], n))
            getattr(ref, n + "_reverse").copy_(getattr(m.bwd[0], n))
    codes, valid = encode(["ACGU" * 10, "GGCAUGU" * 5, "UAGC" * 10 + "A"])
    x = one_hot(codes)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, valid.sum(1), batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(ref(packed)[0], batch_first=True, total_length=41)
        return m.states(x, valid), out


@pytest.mark.cpu_float
def test_lstm_equals_a_packed_bidirectional_lstm():
    ours, packed = packed_lstm_pair()
    # Measured (bench/test_margins.py, default / avx2 / avx512): max difference 8.9e-8, 11x below atol.
    torch.testing.assert_close(ours, packed, rtol=0, atol=1e-6)


LSTM_STEPS = 300


def tiny_motif_data(seed):
    """128 random 30-nt sequences; the target is the number of GC dinucleotides: (x, valid, y)."""
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list("ACGU"), 30)) for _ in range(128)]
    codes, valid = encode(seqs)
    return one_hot(codes), valid, torch.tensor([float(s.count("GC")) for s in seqs])


def lstm_tiny_motif_spearman(seed):
    """Train the BiLSTM on tiny_motif_data(seed) for LSTM_STEPS full-batch Adam steps; its training-set
    Spearman."""
    torch.manual_seed(seed)
    x, valid, y = tiny_motif_data(seed)
    model = RNALSTM(hidden=16, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(LSTM_STEPS):
        opt.zero_grad()
        loss = masked_mse(model(x, valid), y, torch.ones(128))
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return masked_spearman(model(x, valid), y, torch.ones(128))


@pytest.mark.cpu_float
def test_lstm_learns_a_motif_on_tiny_data():
    # Measured (bench/test_margins.py, seeds 0-7, ATEN_CPU_CAPABILITY default / avx2 / avx512, Intel Xeon):
    # 0.9618-0.9735; seed 0 0.9619. The threshold keeps a 0.03 margin below the worst. (At 150 steps seed 0
    # gave 0.9525 / 0.9473 / 0.9473: the old threshold 0.95 failed under avx2, and seed 4 had not learned yet:
    # 0.62.)
    assert lstm_tiny_motif_spearman(0) > 0.93


def test_simulator_is_deterministic_and_in_the_course_format(sim_dir, tmp_path):
    simulate(tmp_path, seed=3, n_seta=400, n_setb=300)
    assert (tmp_path / "norm_data.txt").read_bytes() == (sim_dir / "norm_data.txt").read_bytes()
    df = pd.read_csv(sim_dir / "norm_data.txt", sep="\t")
    assert {"Probe_Set", "RNA_Seq", "RNCMPT00168"} <= set(df.columns)
    assert (df.Probe_Set == "SetA").sum() == 400 and (df.Probe_Set == "SetB").sum() == 300
    assert df.RNA_Seq.str.len().between(38, 41).all() and df.RNA_Seq.str.fullmatch("[ACGU]+").all()
    meta = pd.read_excel(sim_dir / "metadata.xlsx", sheet_name="Master List--Plasmid Info")
    assert "RBFOX1" in meta[" Protein_name"].tolist()          # stray spaces kept, as in the course file
    info = json.loads((sim_dir / "simulation.json").read_text())
    assert 0 < info["proteins"]["RBFOX1"]["noise_ceiling_spearman_setB"] < 1
    assert len(info["proteins"]) >= 5
    signal = pd.read_csv(sim_dir / "signal_noise_free.txt", sep="\t")
    top = df.loc[signal.RNCMPT00168.nlargest(10).index, "RNA_Seq"]
    assert top.str.contains("GCAUG").mean() >= 0.8             # the strongest probes carry the motif


@pytest.mark.parametrize("meta_name", ["metadata.xlsx", "metadata.csv"])
def test_loader_reads_xlsx_and_csv(sim_dir, tmp_path, meta_name):
    d = tmp_path / "course"
    d.mkdir()
    (d / "norm_data.txt").write_bytes((sim_dir / "norm_data.txt").read_bytes())
    (d / meta_name).write_bytes((sim_dir / meta_name).read_bytes())
    splits, record = load_rnacompete(d, ["RBFOX1", "sim-QKI"], cache_dir=tmp_path / "cache")
    assert record["sizes"] == {"train": 320, "val": 80, "test": 300} and record["source"] == "rnacompete"
    assert record["ids"] == ["RNCMPT00168", "RNCMPT90003"]
    tr = splits["train"]
    assert tr["codes"].shape == (320, 41) and tr["y"].shape == (320, 2) and tr["y_mask"].shape == (320, 2)
    m = tr["y_mask"][:, 0].bool()
    assert tr["y"][m, 0].mean().abs() < 1e-5 and (tr["y"][~m, 0] == 0).all()


def test_cache_is_invalidated_when_the_file_changes(sim_dir, tmp_path):
    d = tmp_path / "course"
    d.mkdir()
    for f in ("norm_data.txt", "metadata.csv"):
        (d / f).write_bytes((sim_dir / f).read_bytes())
    a, ra = load_rnacompete(d, ["RBFOX1"], cache_dir=tmp_path / "cache")
    df = pd.read_csv(d / "norm_data.txt", sep="\t")
    df["RNCMPT00168"] = -df["RNCMPT00168"]
    df.to_csv(d / "norm_data.txt", sep="\t", index=False)
    b, rb = load_rnacompete(d, ["RBFOX1"], cache_dir=tmp_path / "cache")
    assert ra["cache"] != rb["cache"] and not torch.equal(a["train"]["y"], b["train"]["y"])
    c, rc = load_rnacompete(d, ["RBFOX1"], cache_dir=tmp_path / "cache")
    assert rc["cache"] == rb["cache"] and torch.equal(b["train"]["y"], c["train"]["y"])


def course_copy(sim_dir, tmp_path, edit=None):
    d = tmp_path / "bad"
    d.mkdir()
    df = pd.read_csv(sim_dir / "norm_data.txt", sep="\t")
    df = edit(df) if edit else df
    df.to_csv(d / "norm_data.txt", sep="\t", index=False)
    (d / "metadata.csv").write_bytes((sim_dir / "metadata.csv").read_bytes())
    return d


@pytest.mark.parametrize("edit, proteins, message", [
    (lambda df: df.drop(columns="RNA_Seq"), ["RBFOX1"], "missing column 'RNA_Seq'"),
    (None, ["NOPE1"], "unknown protein 'NOPE1'.*available: .*RBFOX1"),
    (lambda df: df.assign(RNCMPT00168=np.nan), ["RBFOX1"],
     "RNCMPT00168 \\(RBFOX1\\) is all NaN in the train split"),
    (lambda df: df[df.Probe_Set == "SetA"], ["RBFOX1"], "no SetB rows"),
])
def test_bad_course_files_get_clear_errors(sim_dir, tmp_path, edit, proteins, message):
    with pytest.raises(UserError, match=message):
        load_rnacompete(course_copy(sim_dir, tmp_path, edit), proteins, cache_dir=tmp_path / "cache")


def test_missing_course_files_say_where_they_go(tmp_path):
    with pytest.raises(UserError, match="put norm_data.txt and metadata.xlsx there.*common.rna.simulate"):
        load_rnacompete(tmp_path, ["RBFOX1"])


def test_q2_1_smoke_run_and_cli_errors(sim_dir, tmp_path):
    out = ["--out-dir", str(tmp_path / "f"), "--run-dir", str(tmp_path / "r"), "--device", "cpu"]
    ok = subprocess.run([sys.executable, "q2_1_cnn_lstm.py", "--data-dir", str(sim_dir), "--quick", *out],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    for model in ("cnn", "lstm"):
        m = json.loads((tmp_path / "f" / "q2_1_quick" / model / "metrics.json").read_text())
        assert m["data"]["source"] == "simulated" and set(m["test"]) == {"spearman", "pearson", "mse"}
        assert set(m["history"][0]) >= {"epoch", "train_loss", "val_loss", "val_spearman", "seconds"}
        assert (tmp_path / "f" / "q2_1_quick" / model / "trials.csv").is_file()
    assert (tmp_path / "f" / "q2_1_quick" / "loss_curves.png").is_file()
    # --retrain-selected: the recorded selection, once per seed, without a new search
    ok = subprocess.run([sys.executable, "q2_1_cnn_lstm.py", "--data-dir", str(sim_dir), "--quick", "--model",
                         "cnn", "--retrain-selected", "--seeds", "0", "1", *out],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    agg = json.loads((tmp_path / "f" / "q2_1_quick" / "cnn" / "aggregate.json").read_text())
    assert agg["seeds"] == [0, 1] and agg["metrics"]["test.spearman"]["n"] == 2
    s0 = json.loads((tmp_path / "f" / "q2_1_quick" / "cnn" / "seed0" / "metrics.json").read_text())
    searched = json.loads((tmp_path / "f" / "q2_1_quick" / "cnn" / "metrics.json").read_text())
    assert s0["config"]["hp"] == searched["config"]["hp"] and s0["seed"] == 0
    # --retrain-default: the homework default per seed; on seed 0 it is the search's trial 0, epoch for epoch
    ok = subprocess.run([sys.executable, "q2_1_cnn_lstm.py", "--data-dir", str(sim_dir), "--quick", "--model",
                         "cnn", "--retrain-default", "--seeds", "0", *out],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    d0 = json.loads((tmp_path / "f" / "q2_1_quick" / "cnn_default" / "seed0" / "metrics.json")
                    .read_text())
    assert (d0["variant"] == "cnn_default"
            and d0["config"]["hp"] == {"kernel": 12, "filters": 32, "hidden": 32, "dropout": 0.2})
    assert ((d0["config"]["lr"], d0["config"]["batch_size"]) == (1e-3, 64)
            and searched["config"]["search"]["best_trial"] == 0)
    assert [h["val_spearman"] for h in d0["history"]] == [h["val_spearman"] for h in searched["history"]]
    assert d0["test"] == searched["test"] and d0["stopped_early"] == searched["stopped_early"]
    # each seed keeps a checkpoint: --resume meets the finished seed and keeps its metrics file as it is
    before = (tmp_path / "f" / "q2_1_quick" / "cnn_default" / "seed0" / "metrics.json").read_text()
    again = subprocess.run([sys.executable, "q2_1_cnn_lstm.py", "--data-dir", str(sim_dir), "--quick",
                            "--model", "cnn", "--retrain-default", "--seeds", "0", "--resume", *out],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "finished earlier" in again.stdout, again.stderr
    assert (tmp_path / "f" / "q2_1_quick" / "cnn_default" / "seed0" / "metrics.json").read_text() == before
    # a fresh clone (no runs/: no journal, no checkpoints): --resume keeps the finished search and its seeds
    search_rec = tmp_path / "f" / "q2_1_quick" / "cnn" / "metrics.json"
    kept = {p: p.read_text() for p in (search_rec, search_rec.parent / "seed0" / "metrics.json")}
    shutil.rmtree(tmp_path / "r")
    again = subprocess.run([sys.executable, "q2_1_cnn_lstm.py", "--data-dir", str(sim_dir), "--quick",
                            "--model", "cnn", "--resume", "--seeds", "0", *out],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "search finished earlier" in again.stdout and "(worker" not in again.stdout, again.stdout
    assert not (tmp_path / "r" / "q2_1_quick" / "cnn" / "optuna.journal").exists()   # no new study
    assert all(p.read_text() == text for p, text in kept.items())
    # ... but a finished search on other data is not resumed over
    search_rec.write_text(search_rec.read_text().replace(searched["data"]["checksum"], "0" * 32))
    bad = subprocess.run([sys.executable, "q2_1_cnn_lstm.py", "--data-dir", str(sim_dir), "--quick",
                          "--model", "cnn", "--resume", *out], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and "on other data" in bad.stderr and "Traceback" not in bad.stderr
    bad = subprocess.run([sys.executable, "q2_1_cnn_lstm.py", "--data-dir", str(sim_dir),
                          "--retrain-selected", "--seeds", "0", "--out-dir", str(tmp_path / "empty"),
                          "--device", "cpu"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "run the search first" in bad.stderr and "Traceback" not in bad.stderr
    bad = subprocess.run([sys.executable, "q2_1_cnn_lstm.py", "--data-dir", str(tmp_path / "nothing"), *out],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "common.rna.simulate" in bad.stderr
    bad = subprocess.run([sys.executable, "q2_1_cnn_lstm.py", "--data-dir", str(sim_dir),
                          "--protein", "XYZ", *out],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown protein 'XYZ'" in bad.stderr


def test_the_search_record_reads_early_stopping_back_from_the_selected_trials_history():
    from q2_1_cnn_lstm import early_stopped
    hist = [{"epoch": e} for e in range(1, 23)]   # best at 17, patience 5: fit() stops after epoch 22
    assert early_stopped(hist, 17, 5)
    assert not early_stopped(hist[:21], 17, 5)   # 4 epochs without a better one: the budget ended it
    assert not early_stopped(hist, 17, 0)        # no early stopping asked for


def test_filter_consensus_and_pwm_of_a_planted_motif():
    from interpret_cnn import consensus, filter_pwms
    torch.manual_seed(0)
    model = RNACNN(kernel=5, filters=1).eval()
    with torch.no_grad():   # a filter that matches GCAUG exactly: +1 on the motif's bases, -1 elsewhere
        w = -torch.ones(1, 4, 5)
        for i, b in enumerate("GCAUG"):
            w[0, "ACGU".index(b), i] = 1.0
        model.conv.weight.copy_(w)
        model.conv.bias.fill_(-4.0)
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGU"), 40)) for _ in range(200)]
    seqs = [s[:10] + "GCAUG" + s[15:] if i % 4 == 0 else s for i, s in enumerate(seqs)]
    codes, valid = encode(seqs)
    pwms, act = filter_pwms(model, {"x": one_hot(codes), "valid": valid}, top_n=20)
    cons, bits = consensus(pwms[0])
    assert cons == "GCAUG" and (bits > 1.9).all()
    assert consensus(np.full((3, 4), 0.25))[0] == "nnn"


def test_decode_inverts_encode():
    from common.rna.format import decode
    seqs = ["ACGU", "GCAUGNNU" * 5, "UUXA"]
    codes, valid = encode(seqs)
    assert decode(one_hot(codes), valid) == ["ACGU", ("GCAUGNNU" * 5)[:41], "UUNA"]
