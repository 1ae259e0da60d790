"""Q2.2 / Q2.3 / make_figures tests: attention masking, multi-protein shapes, no held-out leakage,
seed aggregates, and quick runs of every script feeding make_figures.py.

Run: python -m pytest -q tests/test_q2_extra.py
"""
import itertools
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT, make_blood_npz

from common.reporting.plots import run_label
from common.rna.format import decode, encode, one_hot
from common.rna.models import RNALSTM
from common.rna.multi import MultiProteinModel, kmer_codes, kmer_descriptors, profile_scores, train_multi
from common.rna.simulate import simulate
from common.runfiles.records import aggregate, seed_notes, stands_for_cap
from common.training.loop import FitConfig
from common.training.metrics import masked_spearman


def batch(seqs):
    codes, valid = encode(seqs)
    return one_hot(codes), valid


@pytest.mark.parametrize("heads", [1, 3])
def test_attention_sums_to_one_on_valid_positions_and_is_zero_on_padding(heads):
    torch.manual_seed(0)
    model = RNALSTM(hidden=16, attention_heads=heads).eval()
    x, valid = batch(["ACGUGCAUGU" * 4, "GCAUG" * 7 + "ACG", "U" * 30])
    _, w = model.encode(x, valid, return_weights=True)
    assert w.shape == (3, heads, 41)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, heads))
    assert (w.masked_select(~valid[:, None, :].expand_as(w)) == 0).all()
    assert (w.masked_select(valid[:, None, :].expand_as(w)) > 0).all()


def test_site_statistics_tell_attention_on_the_site_from_a_backward_state_rule():
    """Two made-up attention rules on the same probes: all weight on the site, and weights uniform up to the
    site's end (what following the backward LSTM's state would give). Only the first beats every level."""
    from common.rna.attention import finds_site, single_sites, site_statistics
    rng = np.random.default_rng(0)
    seqs = []
    for i in range(300):
        s = "".join(rng.choice(list("AC"), 40))   # no G, no U: no other site, no GCACG, no flanking U
        if i % 2:
            pos = rng.integers(1, 34)
            s = s[:pos] + "GCAUG" + s[pos + 5:]
        seqs.append(s)
    sites = single_sites(seqs)
    assert all((site is not None) == bool(i % 2) for i, site in enumerate(sites))
    on_site, backward, forward = np.zeros((300, 41)), np.zeros((300, 41)), np.zeros((300, 41))
    for i, (seq, site) in enumerate(zip(seqs, sites)):
        if site is None:
            on_site[i, :len(seq)] = backward[i, :len(seq)] = forward[i, :len(seq)] = 1 / len(seq)
        else:   # 90% on the site, 10% spread over the probe
            on_site[i, :len(seq)] = 0.1 / len(seq)
            on_site[i, site[0]:site[1]] += 0.9 / (site[1] - site[0])
            backward[i, :site[1]] = 1 / site[1]
            forward[i, site[0]:len(seq)] = 1 / (len(seq) - site[0])
    good, bad, ahead = (site_statistics(w, seqs)["single_site_probes_by_position"]
                        for w in (on_site, backward, forward))
    # the verdict: only the attention on the site finds it; each state rule fails in some third
    verdicts = [finds_site({"single_site_probes_by_position": x}) for x in (good, bad, ahead)]
    assert verdicts == [True, False, False]
    assert all(b["ratio_to_forward_state"] == pytest.approx(1) for b in ahead)
    assert finds_site({"attention_mass_on_motif": 0.5}) is None   # a version-1 record: no verdict
    assert ([b["bin"] for b in good] == ["5' third", "middle third", "3' third"]
            and all(b["probes"] > 20 for b in good))
    for g, b in zip(good, bad):
        assert (g["flank_contrast"] > 10 and g["ratio_to_position_only"] > 2
                and g["ratio_to_backward_state"] > 1)
        assert b["ratio_to_backward_state"] == pytest.approx(1) and b["flank_contrast"] == pytest.approx(1)
        assert b["ratio_to_chance"] > 1   # chance alone would have credited the backward-state rule
    # near the 5' end the backward-state rule also puts most weight on the site: there only the flank tells
    # them apart
    assert (good[0]["ratio_to_backward_state"] < good[2]["ratio_to_backward_state"]
            and good[2]["ratio_to_backward_state"] > 3)


def test_q2_2_pairing_by_seed_shares_the_lstm_initialisation_only():
    """What the paired Q2.2 rows rest on (common/reporting/q2_2_design.py): at one seed every pooling variant
    starts from the same LSTM weights; the MLP head's initialisation differs (the attention layers are built
    before it), so the pairing is partial, as the rows say."""
    def build(**kw):
        torch.manual_seed(3)
        return RNALSTM(**kw)
    mean = build()
    variants = [build(attention_heads=1), build(attention_heads=4), build(self_attention_heads=4)]
    for m in variants:
        assert all(torch.equal(a, b) for a, b in zip(mean.fwd.parameters(), m.fwd.parameters()))
        assert all(torch.equal(a, b) for a, b in zip(mean.bwd.parameters(), m.bwd.parameters()))
        assert not torch.equal(mean.head[-1].weight, m.head[-1].weight)


def test_kmer_codes_mark_windows_with_padding_or_n():
    x, valid = batch(["AAAAAC", "ACGNAAAAA"])
    codes = kmer_codes(x, valid, k=5)
    assert codes[0, :2].tolist() == [0, 1] and (codes[0, 2:] == -1).all()
    assert (codes[1, :4] == -1).all() and codes[1, 4].item() == 0


@pytest.mark.parametrize("protein", ["identity", "profile"])
@pytest.mark.parametrize("encoder, hp", [("cnn", {"filters": 8}), ("lstm", {"hidden": 8})])
def test_multi_protein_model_shapes(protein, encoder, hp):
    x, valid = batch(["ACGU" * 10, "GCAUG" * 8, "UUAGGGA" * 5])
    desc = torch.randn(4, 4 ** 5)
    model = MultiProteinModel(encoder, hp, 4, protein=protein,
                              descriptors=desc if protein == "profile" else None)
    assert model(x, valid).shape == (3, 4)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    simulate(d, seed=5, n_seta=500, n_setb=300)
    return d


def small_data(sim, tmp_path):
    from common.rna.fit import device_split
    from common.rna.format import load_rnacompete
    splits, _ = load_rnacompete(sim, ["RBFOX1", "sim-QKI", "sim-PUM1"], cache_dir=tmp_path / "cache")
    return {s: device_split(v, "cpu") for s, v in splits.items()}


def test_held_out_protein_never_reaches_training(sim, tmp_path):
    """Scrambling the held-out protein's training targets must leave the trained model bit-identical."""
    data = small_data(sim, tmp_path)
    cfg = FitConfig(epochs=2, batch_size=64, seed=0, select="val_spearman")
    desc = kmer_descriptors(data["train"])
    states = []
    for scramble in (False, True):
        d = {s: dict(v) for s, v in data.items()}
        if scramble:
            for s in ("train", "val"):
                y = d[s]["y"].clone()
                y[:, 0] = torch.randn(len(y))
                d[s]["y"] = y
        torch.manual_seed(0)
        model = MultiProteinModel("cnn", {"filters": 8}, 3, protein="profile", descriptors=desc)
        result = train_multi(model, d, [1, 2], 1e-3, cfg, "cpu")
        states.append((result["best_state"], [h["val_spearman"] for h in result["history"]]))
    for k in states[0][0]:
        assert torch.equal(states[0][0][k], states[1][0][k]), k
    assert states[0][1] == states[1][1]


def test_descriptors_use_only_the_split_they_are_given(sim, tmp_path):
    data = small_data(sim, tmp_path)
    a = kmer_descriptors(data["train"])
    test_changed = dict(data["test"], y=torch.randn_like(data["test"]["y"]))
    assert a.shape == (3, 1024) and torch.equal(a, kmer_descriptors(data["train"]))
    assert not torch.equal(a, kmer_descriptors(test_changed))


def test_aggregate_mean_and_std():
    recs = [{"test": {"acc": v}, "t": s} for v, s in ((0.9, 10.0), (0.8, 12.0), (0.95, 11.0))]
    agg = aggregate(recs, ["test.acc", "t"])
    assert agg["test.acc"]["mean"] == pytest.approx(np.mean([0.9, 0.8, 0.95]))
    assert agg["test.acc"]["std"] == pytest.approx(np.std([0.9, 0.8, 0.95], ddof=1))
    assert agg["t"]["n"] == 3 and agg["t"]["values"] == [10.0, 12.0, 11.0]
    assert aggregate(recs[:1], ["t"])["t"]["std"] == 0.0


def run(*args):
    r = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


@pytest.fixture(scope="module")
def quick_figures(sim, tmp_path_factory):
    """Every script's quick run into one folder, renamed to the real experiment names."""
    tmp = tmp_path_factory.mktemp("fig")
    out = ["--out-dir", str(tmp / "f"), "--run-dir", str(tmp / "r"), "--device", "cpu"]
    npz = make_blood_npz(tmp / "blood.npz")
    logs = {"q1_1": run("q1_1_cnn.py", "--npz", str(npz), "--quick", "--seeds", "0", "1", "--epochs", "1",
                        *out),
            "q1_2": run("q1_2_maxpool.py", "--npz", str(npz), "--quick", "--epochs", "1", "--seeds", "0",
                        *out),
            "study": run("q1_softmax_study.py", "--npz", str(npz), "--quick", "--seeds", "0",
                         *out[:2], *out[4:]),
            "q2_1": run("q2_1_cnn_lstm.py", "--data-dir", str(sim), "--quick", *out),
            "q2_2": run("q2_2_attention.py", "--data-dir", str(sim), "--quick", *out),
            "q2_3": run("q2_3_multi_protein.py", "--data-dir", str(sim), "--quick", "--proteins", "RBFOX1",
                        "sim-QKI", "sim-PUM1", *out)}
    for d in (tmp / "f").glob("*_quick"):
        d.rename(tmp / "f" / d.name[:-6])
    # The tuned setting's folder, for make_figures (its --setting tuned runs are tested with the resume
    # tests).
    shutil.copytree(tmp / "f" / "q2_2_default", tmp / "f" / "q2_2")
    return tmp / "f", logs


def test_q2_2_quick_run_outputs(quick_figures):
    f, logs = quick_figures
    s = json.loads((f / "q2_2_default" / "summary.json").read_text())
    assert set(s["variants"]) == {"lstm", "lstm_attention"} and s["variants"]["lstm"]["seeds"] == [1, 2]
    rec = json.loads((f / "q2_2_default" / "lstm_attention" / "seed1" / "metrics.json").read_text())
    assert rec["config"]["hp"] == {"hidden": 64, "layers": 1, "dropout": 0.2, "mlp_hidden": 64,
                                   "attention_heads": 1}
    assert (rec["config"]["lr"] == 1e-3 and rec["config"]["batch_size"] == 64
            and rec["variant"] == "lstm_attention")
    code = rec["code"]   # provenance: the commit, whether the tree was dirty, and the command line
    assert re.fullmatch(r"[0-9a-f]{40}", code["git_commit"]) and isinstance(code["git_dirty"], bool)
    assert code["argv"][0] == "q2_2_attention.py" and "--quick" in code["argv"]
    # config is the protocol (the script's frozen Q22Config); the run options are stored apart
    assert set(rec["config"]) == {"setting", "variant", "folder", "seed", "epochs", "hp", "lr", "batch_size",
                                  "hp_source", "precision", "protein", "quick"}
    assert {"out_dir", "run_dir", "resume", "force", "note", "malloc_kept", "data_dir"} <= set(rec["options"])
    a = rec["attention"]
    assert (0 <= a["attention_mass_on_motif"] <= 1 and [b["bin"] for b in a["single_site_probes_by_position"]]
            == ["5' third", "middle third", "3' third"])
    assert (0 < len(a["map_probes"]) <= 9
            and {p["site_bin"] for p in a["map_probes"]} <= {"5' third", "middle third", "3' third"})
    agg = json.loads((f / "q2_2_default" / "lstm_attention" / "aggregate.json").read_text())
    assert agg["metrics"]["test.spearman"]["n"] == 2
    # files made from records name the code that made them, as the records do
    assert agg["code"]["argv"][0] == s["code"]["argv"][0] == "q2_2_attention.py"
    assert "attention mass on UGCAUG/GCAUG" in logs["q2_2"] and "single sites by position" in logs["q2_2"]


def test_q2_3_resume_keeps_finished_records_bit_for_bit(quick_figures, sim, tmp_path):
    """--resume used to retrain over finished Q2.3 records (it acted as --force); now every finished arm is
    kept."""
    f, _ = quick_figures
    shutil.copytree(f / "q2_3", tmp_path / "q2_3_quick")   # a finished quick run where this command writes
    files = sorted((tmp_path / "q2_3_quick").rglob("metrics.json"))
    before = [p.read_bytes() for p in files]
    r = subprocess.run([sys.executable, "q2_3_multi_protein.py", "--data-dir", str(sim), "--quick",
                        "--resume", "--proteins", "RBFOX1", "sim-QKI", "sim-PUM1", "--out-dir", str(tmp_path),
                        "--run-dir", str(tmp_path / "runs")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    # 1 seen + 3 single + 3 few-shot + 3 no-profile controls
    assert len(files) == 10 and r.stdout.count("finished earlier") == 10 and "epoch  1/" not in r.stdout
    assert [p.read_bytes() for p in files] == before
    # without --resume (and without --force) a finished run refuses in one line
    r = subprocess.run([sys.executable, "q2_3_multi_protein.py", "--data-dir", str(sim), "--quick",
                        "--proteins", "RBFOX1", "sim-QKI", "sim-PUM1", "--out-dir", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "already holds a finished run" in r.stderr and [p.read_bytes() for p in files] == before


def test_q2_3_refuses_a_kept_record_that_ran_to_another_cap(quick_figures, sim, tmp_path):
    """A finished record trained with a smaller cap that it reached cannot stand for a larger --epochs: one
    line, exit 2, nothing trained or overwritten."""
    f, _ = quick_figures
    shutil.copytree(f / "q2_3", tmp_path / "q2_3_quick")
    path = tmp_path / "q2_3_quick" / "seed1" / "seen" / "metrics.json"
    rec = json.loads(path.read_text())
    rec["config"]["epochs"], rec["stopped_early"] = 1, False
    path.write_text(json.dumps(rec))
    before = path.read_bytes()
    r = subprocess.run([sys.executable, "q2_3_multi_protein.py", "--data-dir", str(sim), "--quick",
                        "--resume", "--proteins", "RBFOX1", "sim-QKI", "sim-PUM1", "--out-dir", str(tmp_path),
                        "--run-dir", str(tmp_path / "runs")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "ran to its cap of 1 epochs: it cannot stand for --epochs 2" in r.stderr
    assert path.read_bytes() == before and "epoch  1/" not in r.stdout


def test_q2_3_quick_run_outputs(quick_figures):
    f, _ = quick_figures
    s = json.loads((f / "q2_3" / "summary.json").read_text())
    assert [r["protein"] for r in s["rows"]] == ["RBFOX1", "sim-QKI", "sim-PUM1"]
    assert [r["label"] for r in s["rows"]][1] == "sim-QKI (simulated motif)" and s["seeds"] == [1]
    m = json.loads((f / "q2_3" / "seed1" / "fewshot" / "sim-QKI" / "metrics.json").read_text())
    assert (m["held_out"] == "sim-QKI" and "sim-QKI" not in m["train_proteins"]
            and m["arm"] == "fewshot/sim-QKI")
    assert m["config"]["patience"] == 5 and m["config"]["hp_source"].startswith("Q2.1 selected")
    assert m["converged"] == (m["stopped_early"] or m["best_epoch"] < m["epochs_run"])
    # the no-profile control: the same model with every profile zero, on the same proteins and seed
    c = json.loads((f / "q2_3" / "seed1" / "noprofile" / "sim-QKI" / "metrics.json").read_text())
    assert (c["held_out"] == "sim-QKI" and c["train_proteins"] == m["train_proteins"]
            and c["params"] == m["params"] and c["variant"] == "noprofile_sim-QKI")
    assert s["rows"][1]["noprofile"] == c["held_out_test"]["spearman"]
    assert "few-shot (own profile) − no-profile control" in s["comparisons"]
    if not m["converged"]:
        assert "seed1/fewshot/sim-QKI" in s["not_converged"]
    base = json.loads((f / "q2_3" / "profile_only.json").read_text())
    assert base["code"]["argv"][0] == s["code"]["argv"][0] == "q2_3_multi_protein.py"
    assert set(base["proteins"]) == {"RBFOX1", "sim-QKI", "sim-PUM1"} and "top" in base["definition"]
    c = s["comparisons"]["few-shot (own profile) − profile-only baseline"]
    assert c["n"] == 3 and c["diff"] == pytest.approx(np.mean([r["fewshot"] - r["profile_only"]
                                                               for r in s["rows"]]))
    table = (f / "q2_3" / "table.md").read_text()
    assert "| protein |" in table and "profile-only baseline" in table and "invented motifs" in table


def test_q2_3_another_cap_is_its_own_experiment_and_lists_the_records_it_kept():
    """--epochs 60 is another protocol: its own folder, and its summary names every record it kept from a
    run with another cap (the cap-sensitivity queue copies the early-stopped 30-epoch records there)."""
    sys.path.insert(0, str(ROOT))
    from common.reporting.q2_3 import summarise, table
    from q2_3_multi_protein import experiment_for
    assert (experiment_for(30, False), experiment_for(60, False), experiment_for(2, True)) == (
        "q2_3", "q2_3_cap60", "q2_3_quick")
    names = ["RBFOX1", "sim-QKI"]
    per_seed = [{"single": {"RBFOX1": 0.6, "sim-QKI": 0.5}, "multi_seen": {"RBFOX1": 0.61, "sim-QKI": 0.52},
                 "fewshot": {"RBFOX1": 0.4, "sim-QKI": 0.33}, "not_converged": [],
                 "epochs": {"seen": {"best": 12, "run": 17, "stopped_early": True, "cap": 30},
                            "fewshot/sim-QKI": {"best": 17, "run": 22, "stopped_early": True, "cap": 60}}}]
    baseline = {"experiment": "q2_3_cap60", "proteins": {
        n: {"test": {"spearman": 0.2}, "test_others_mean": {"spearman": 0.25}} for n in names}}
    record = {"source": "simulated", "preset": "calibrated", "checksum": "0" * 32}
    s = summarise(names, ["RNCMPT00168", "RNCMPT90001"], per_seed, baseline, record, protocol={
        "encoder": "cnn", "encoder_hp": {}, "lr": 1e-3, "batch_size": 64, "encoder_source": "default",
        "epochs": 60, "patience": 5, "seeds": [1], "device": "cpu"})
    assert s["kept_from_other_cap"] == {"seed1/seen": 30} and s["ran_to_cap"] == []
    # every run converged: no "converged runs only" rows repeating the few-shot arm's own
    assert [k for k in s["comparisons"] if "converged" in k] == [] and len(s["comparisons"]) == 4
    assert "1 records kept from a run with another epoch cap (each stopped early" in table(s, record)
    assert summarise(names, ["a", "b"], per_seed, baseline, record, protocol={
        **{k: s[k] for k in ("encoder", "encoder_hp", "lr", "batch_size", "encoder_source", "patience",
                             "seeds", "device")}, "epochs": 30})["kept_from_other_cap"] == {
        "seed1/fewshot/sim-QKI": 60}
    # which kept records may stand for another cap: the same cap, or stopped early within both
    rec = lambda cap, run, early: {"config": {"epochs": cap}, "epochs_run": run, "stopped_early": early}
    assert stands_for_cap(rec(30, 30, False), 30) and stands_for_cap(rec(30, 22, True), 60)
    assert stands_for_cap(rec(30, 30, True), 60) and stands_for_cap(rec(60, 22, True), 30)
    assert not stands_for_cap(rec(30, 30, False), 60) and not stands_for_cap(rec(60, 46, True), 30)


def test_cap_check_rule_for_early_stopped_and_capped_pairs():
    """bench/q2_3_cap_check.py's rule: a pair agrees when its epochs and selected epoch are equal and no
    validation Spearman differs by more than 1e-4; with --first N, N equal epochs, or an equal early stop."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("cap_check", ROOT / "bench" / "q2_3_cap_check.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    rec = lambda run, best, bump=0.0: {"epochs_run": run, "best_epoch": best, "history": [
        {"train_loss": 1 / e, "val_loss": 1 / e, "val_spearman": 0.5 + e / 100 + bump * (e == 2)}
        for e in range(1, run + 1)]}
    assert check.compare(rec(22, 17), rec(22, 17), None)["agrees"]
    assert check.compare(rec(22, 17), rec(22, 17), 30)["agrees"]            # stopped early before N, equal
    assert check.compare(rec(37, 32), rec(30, 26), 30)["agrees"]            # 30 equal epochs, then more
    assert not check.compare(rec(37, 32), rec(30, 26), None)["agrees"]      # another stop
    assert not check.compare(rec(24, 19), rec(16, 11), 30)["agrees"]        # stopped elsewhere before N
    assert not check.compare(rec(22, 17, 2e-4), rec(22, 17), 30)["agrees"]  # beyond the tolerance
    assert check.compare(rec(22, 17, 5e-5), rec(22, 17), None)["agrees"]   # within it, not bitwise
    assert not check.compare(rec(22, 17, 5e-5), rec(22, 17), None)["bitwise_equal"]
    dev = lambda r, new, old: {**r, "devices": [new, old]}
    rows = {"a": dev(check.compare(rec(37, 32), rec(30, 26), 30), "A", "A"),
            "b": dev(check.compare(rec(22, 17), rec(22, 17), 30), "A", "A"),
            "c": dev(check.compare(rec(24, 19, 2e-4), rec(16, 11), 30), "B", "A")}
    assert check.by_devices(rows) == {"A vs A": {"pairs": 2, "agree": 2, "bitwise_equal": 2, "ran_longer": 1},
                                      "B vs A": {"pairs": 1, "agree": 0, "bitwise_equal": 0, "ran_longer": 1}}


def test_profile_only_baseline_matches_an_independent_computation(sim, tmp_path):
    """The profile and the probe scores recomputed from the sequences as strings (collections.Counter,
    scipy)."""
    from collections import Counter

    from scipy.stats import spearmanr
    data = small_data(sim, tmp_path)
    tr, te = data["train"], data["test"]
    kmers = ["".join(t) for t in itertools.product("ACGU", repeat=5)]
    seqs_tr, seqs_te = decode(tr["x"], tr["valid"]), decode(te["x"], te["valid"])
    windows = lambda s: [s[i:i + 5] for i in range(len(s) - 4) if "N" not in s[i:i + 5]]
    profiles = kmer_descriptors(tr)
    scores = profile_scores(te["x"], te["valid"], profiles)
    for j in range(tr["y"].shape[1]):
        rows = [i for i in range(len(seqs_tr)) if tr["y_mask"][i, j] > 0]
        top = sorted(rows, key=lambda i: -float(tr["y"][i, j]))[:max(1, int(0.01 * len(rows)))]
        count = lambda idx: Counter(w for i in idx for w in windows(seqs_tr[i]))
        ct, ca = count(top), count(rows)
        ft = np.array([ct[k] + 1.0 for k in kmers])
        fa = np.array([ca[k] + 1.0 for k in kmers])
        e = np.log2(ft / ft.sum()) - np.log2(fa / fa.sum())
        mine = (e - e.mean()) / e.std(ddof=1)
        assert np.allclose(profiles[j].numpy(), mine, atol=1e-4)
        own = np.array([sum(mine[kmers.index(w)] for w in windows(s)) for s in seqs_te])
        keep = te["y_mask"][:, j].numpy() > 0
        assert np.allclose(scores[:, j].numpy(), own, atol=1e-3)
        assert masked_spearman(scores[:, j], te["y"][:, j], te["y_mask"][:, j]) == pytest.approx(
            spearmanr(own[keep], te["y"][keep, j].numpy()).statistic, abs=1e-6)


def test_results_table_gives_each_seed_its_own_note_and_titles_give_data_epochs_n_device_but_no_notes():
    run = lambda seed, note=None: {"seed": seed, "config": {"note": note} if note else {}}
    assert seed_notes([run(0, "alone"), run(1, "alone")]) == "alone"
    # a note that only seed 0 has must not read as if it described seeds 1 and 2 (RESULTS.md, figure titles)
    assert (seed_notes([run(0, "rerun"), run(1, "shared"), run(2, "shared")])
            == "seed 0: rerun; seeds 1, 2: shared")
    assert seed_notes([run(0, "rerun"), run(1)]) == "seed 0: rerun"
    assert seed_notes([run(0), run(1)]) == ""
    rec = lambda seed, note=None, variant="a": {**run(seed, note),
                                                "data": {"source": "sim", "md5": "0123456789"},
                                                "epochs_run": 5, "device_name": "cpu", "variant": variant}
    # notes: RESULTS.md
    assert run_label([rec(0, "alone"), rec(1, "alone")]) == "sim (01234567), 5 epochs, n = 2, cpu"
    assert "rerun" not in run_label([rec(0, "rerun"), rec(1, "shared")])
    assert "3–5 epochs run" in run_label([{**rec(0), "epochs_run": 3}, rec(1)])
    assert "n = 2 per variant" in run_label([rec(0), rec(1), rec(0, variant="b"), rec(1, variant="b")])
    assert "n = 2 a, 1 b" in run_label([rec(0), rec(1), rec(0, variant="b")])


def test_make_figures_regenerates_everything_and_names_what_is_missing(quick_figures, tmp_path):
    f, _ = quick_figures
    figs = tmp_path / "figures"
    shutil.copytree(f, figs)
    shutil.copytree(f / "q1_1", figs / "gpu" / "q1_1")
    shutil.copytree(ROOT / "figures" / "q2_data", figs / "q2_data")   # the committed calibration record
    for png in figs.rglob("*.png"):
        png.unlink()
    out = run("make_figures.py", "--figures", str(figs))
    for name in ("q1_1/curves.png", "q1_2/curves.png", "q1_2/comparison.png", "gpu/q1_1/curves.png",
                 "q2_1/loss_curves.png", "q2_1/search_cnn.png", "q2_1/search_lstm.png", "q2_2/curves.png",
                 "q2_2_default/curves.png", "q2_2_default/attention_maps.png", "q2_3/per_protein.png",
                 "q1_softmax_study/outcomes.png", "q1_softmax_study/mechanism.png",
                 "q1_softmax_study/gradients.png", "q2_data/calibration.png"):
        assert (figs / name).stat().st_size > 10_000, name
    results = (figs / "RESULTS.md").read_text()
    assert "| q1_1 | logits |" in results and "Q2.2" in results and "Q2.3" in results and "wrote" in out
    assert "Softmax failure study" in results and "Comparisons with 95% confidence intervals" in results
    (figs / "q2_3" / "summary.json").unlink()
    r = subprocess.run([sys.executable, "make_figures.py", "--figures", str(figs)], cwd=ROOT,
                       capture_output=True, text=True)
    assert (r.returncode == 1 and "run `python q2_3_multi_protein.py`" in r.stderr
            and "Traceback" not in r.stderr)


def q2_2_proc(sim, tmp_path, name, *args, q2_1_metrics=None):
    """One Q2.2 quick run (seed 0; the homework-default BiLSTM, or the tuned setting read from q2_1_metrics)
    into tmp_path/<name>: the process."""
    out = ["--out-dir", str(tmp_path / name), "--run-dir", str(tmp_path / name / "runs"), "--device", "cpu"]
    setting = ["--setting", "tuned", "--q2-1-metrics", str(q2_1_metrics)] if q2_1_metrics else []
    return subprocess.run([sys.executable, "q2_2_attention.py", "--data-dir", str(sim), "--quick", "--seeds",
                           "0", *setting, *out, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def q2_2_metrics_path(tmp_path, name, variant, experiment="q2_2_default_quick"):
    return tmp_path / name / experiment / variant / "seed0" / "metrics.json"


def q2_2_run(sim, tmp_path, name, *args):
    """A Q2.2 quick run that must succeed: (its two metrics records, stdout)."""
    r = q2_2_proc(sim, tmp_path, name, *args)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return {v: json.loads(q2_2_metrics_path(tmp_path, name, v).read_text())
            for v in ("lstm", "lstm_attention")}, r.stdout


def test_q2_2_resume_matches_an_uninterrupted_run(sim, tmp_path):
    full, _ = q2_2_run(sim, tmp_path, "full", "--epochs", "3")
    q2_2_run(sim, tmp_path, "part", "--epochs", "2")
    resumed, log = q2_2_run(sim, tmp_path, "part", "--epochs", "3", "--resume")
    # continued, not restarted
    assert "epoch  3/3" in log and "epoch  1/3" not in log and "epoch  2/3" not in log
    for v in full:
        assert len(resumed[v]["history"]) == 3
        drop = ("seconds", "train_seconds", "eval_seconds")
        assert [{k: h[k] for k in h if k not in drop} for h in resumed[v]["history"]] == \
               [{k: h[k] for k in h if k not in drop} for h in full[v]["history"]]
        assert resumed[v]["test"] == full[v]["test"]
    r = q2_2_proc(sim, tmp_path, "part", "--epochs", "2", "--resume")   # fewer epochs than the checkpoint ran
    assert r.returncode != 0 and r.stderr.strip().endswith("or run without --resume to start afresh")
    assert "already ran 3 epochs, more than --epochs 2" in r.stderr and "Traceback" not in r.stderr


def test_q2_2_resume_of_finished_seeds_keeps_their_metrics(sim, tmp_path):
    q2_2_run(sim, tmp_path, "a", "--epochs", "2")
    paths = [q2_2_metrics_path(tmp_path, "a", v) for v in ("lstm", "lstm_attention")]
    before = [p.read_bytes() for p in paths]
    _, log = q2_2_run(sim, tmp_path, "a", "--epochs", "2", "--resume")
    assert "epoch  1/2" not in log and "epoch  2/2" not in log and log.count("its metrics are kept") == 2
    # not rewritten with the re-test's start time and seconds
    assert [p.read_bytes() for p in paths] == before
    assert (tmp_path / "a" / "q2_2_default_quick" / "summary.json").is_file()


def test_q2_2_resume_recomputes_an_older_attention_statistic_and_keeps_the_rest(sim, tmp_path):
    r = q2_2_proc(sim, tmp_path, "a", "--epochs", "1", "--variants", "lstm_attention")
    assert r.returncode == 0, r.stderr[-2000:]
    path = q2_2_metrics_path(tmp_path, "a", "lstm_attention")
    rec = json.loads(path.read_text())
    new = rec["attention"]
    rec["attention"] = {"statistic_version": 1, "single_site_probes_by_position": []}   # as an older record
    path.write_text(json.dumps(rec))
    r = q2_2_proc(sim, tmp_path, "a", "--epochs", "1", "--variants", "lstm_attention", "--resume")
    assert r.returncode == 0 and "attention statistics recomputed (version 2)" in r.stdout, r.stderr[-2000:]
    again = json.loads(path.read_text())
    assert again["attention"] == new and "attention_recomputed" in again
    assert {k: v for k, v in again.items() if k not in ("attention", "attention_recomputed")} == \
        {k: v for k, v in rec.items() if k != "attention"}


def test_q2_2_resume_from_a_checkpoint_of_another_model_is_a_clear_error(sim, tmp_path):
    # Q2.1 records selecting two BiLSTM widths
    narrow, wide = tmp_path / "narrow.json", tmp_path / "wide.json"
    for path, hidden in ((narrow, 16), (wide, 48)):
        path.write_text(json.dumps({"config": {"hp": {"hidden": hidden, "layers": 1, "dropout": 0.2,
                                                      "mlp_hidden": 64},
                                               "lr": 1e-3, "batch_size": 64}}))
    r = q2_2_proc(sim, tmp_path, "a", "--epochs", "1", "--variants", "lstm", q2_1_metrics=narrow)
    assert r.returncode == 0, r.stderr[-2000:]
    # the tuned setting's folder
    rec = json.loads(q2_2_metrics_path(tmp_path, "a", "lstm", "q2_2_quick").read_text())
    assert rec["config"]["hp"]["hidden"] == 16 and rec["config"]["hp_source"] == str(narrow)
    r = q2_2_proc(sim, tmp_path, "a", "--epochs", "2", "--resume", "--variants", "lstm", q2_1_metrics=wide)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "holds a model of another configuration" in r.stderr and len(r.stderr.strip().splitlines()) == 1
