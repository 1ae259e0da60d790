"""Real-data path: the download command against a local mirror, and one-line errors for every malformed
course file.

Run: python -m pytest -q tests/test_rnacompete_files.py

No internet is needed: a generated course-format folder is served by http.server on 127.0.0.1.
"""
import gzip
import http.server
import json
import shutil
import socket
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from common.rna.format import SHEET, load_rnacompete
from common.rna.simulate import simulate
from common.runfiles.files import UserError

MASTER = "SupplementaryData1_RNAcompete_master_file.xlsx"


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    simulate(d, seed=4, n_seta=500, n_setb=400)
    return d


@pytest.fixture(scope="module")
def mirror(sim_dir, tmp_path_factory):
    """A folder laid out like the Hughes lab's, served on a free local port: (url, folder)."""
    site = tmp_path_factory.mktemp("site")
    with open(sim_dir / "norm_data.txt", "rb") as src, gzip.open(site / "norm_data.txt.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    meta = pd.read_excel(sim_dir / "metadata.xlsx", sheet_name=SHEET)
    with pd.ExcelWriter(site / MASTER) as w:      # the public file spells the sheet with a lower-case 'info'
        pd.DataFrame({"x": [1]}).to_excel(w, sheet_name="Notes", index=False)
        meta.to_excel(w, sheet_name="Master List--Plasmid info", index=False)
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(site), **k)  # noqa: E731
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", site
    server.shutdown()


def cli(*args, env=None):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=env)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_from_a_mirror_then_train(mirror, sim_dir, tmp_path):
    url, _ = mirror
    out = tmp_path / "rnacompete"
    run = cli("-m", "common.rna.download", "--out", str(out), "--base-url", url)
    assert run.returncode == 0, run.stderr
    # gunzipped exactly
    assert (out / "norm_data.txt").read_bytes() == (sim_dir / "norm_data.txt").read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    assert [f["file"] for f in manifest["files"]] == ["norm_data.txt", "metadata.xlsx"]
    assert manifest["files"][0]["url"] == url + "norm_data.txt.gz" and manifest["files"][0]["size"] > 0
    assert not list(out.glob(".*.tmp"))   # no temporary left
    # a rerun finds the complete files and fetches nothing
    before = (out / "norm_data.txt").stat().st_mtime_ns
    again = cli("-m", "common.rna.download", "--out", str(out), "--base-url", url)
    assert again.returncode == 0 and "nothing fetched" in again.stdout
    assert (out / "norm_data.txt").stat().st_mtime_ns == before
    # the loader reads it as real data (sheet 'Master List--Plasmid info' matched ignoring case)
    splits, rec = load_rnacompete(out, ["RBFOX1"], cache_dir=tmp_path / "cache")
    assert rec["source"] == "rnacompete" and rec["sizes"] == {"train": 400, "val": 100, "test": 400}
    # and a one-epoch Q2.1 run trains on it, by RNAcompete id
    run = cli("q2_1_cnn_lstm.py", "--data-dir", str(out), "--quick", "--model", "cnn", "--protein",
              "RNCMPT00168", "--out-dir", str(tmp_path / "f"), "--run-dir", str(tmp_path / "r"),
              "--device", "cpu")
    assert run.returncode == 0, run.stderr
    m = json.loads((tmp_path / "f" / "q2_1_quick" / "cnn" / "metrics.json").read_text())
    assert (m["data"]["source"] == "rnacompete" and m["data"]["ids"] == ["RNCMPT00168"]
            and m["data"]["proteins"] == ["RBFOX1"])
    assert any("NaN" in w for w in m["data"]["warnings"])   # data warnings recorded


def test_download_uses_the_url_variable(mirror, tmp_path):
    url, _ = mirror
    env = {**__import__("os").environ, "RNACOMPETE_URL": url}
    run = cli("-m", "common.rna.download", "--out", str(tmp_path / "d"), env=env)
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "d" / "manifest.json").read_text())["base_url"] == url


def test_offline_download_is_one_line_naming_url_and_alternative(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/"
    run = cli("-m", "common.rna.download", "--out", str(tmp_path / "d"), "--base-url", url, "--timeout", "5")
    assert run.returncode == 2 and "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert (f"{url}norm_data.txt.gz" in run.stderr and "without internet access" in run.stderr
            and "RNACOMPETE_URL" in run.stderr)
    assert not (tmp_path / "d" / "norm_data.txt").exists()


def test_truncated_gzip_leaves_no_file(mirror, tmp_path):
    url, site = mirror
    broken = tmp_path / "site"
    shutil.copytree(site, broken)
    data = (broken / "norm_data.txt.gz").read_bytes()
    (broken / "norm_data.txt.gz").write_bytes(data[: len(data) // 2])
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(broken), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        run = cli("-m", "common.rna.download", "--out", str(tmp_path / "d"),
                  "--base-url", f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()
    assert run.returncode == 2 and "Traceback" not in run.stderr and "run the command again" in run.stderr
    assert not (tmp_path / "d" / "norm_data.txt").exists() and not list((tmp_path / "d").glob(".*"))


def course(sim_dir, tmp_path, edit=None, text=None, meta="metadata.csv"):
    d = tmp_path / "course"
    d.mkdir(exist_ok=True)
    if text is not None:
        (d / "norm_data.txt").write_text(text)
    else:
        df = pd.read_csv(sim_dir / "norm_data.txt", sep="\t")
        (edit(df) if edit else df).to_csv(d / "norm_data.txt", sep="\t", index=False)
    if meta:
        (d / meta).write_bytes((sim_dir / meta).read_bytes())
    return d


def with_letters(df, fraction, letter="X", seed=0):
    """Replace `fraction` of all bases with `letter`."""
    rng = np.random.default_rng(seed)
    seqs = [list(s) for s in df.RNA_Seq]
    for s in seqs:
        for i in np.flatnonzero(rng.random(len(s)) < fraction):
            s[i] = letter
    return df.assign(RNA_Seq=["".join(s) for s in seqs])


@pytest.mark.parametrize("edit, text, proteins, message", [
    (None, "", ["RBFOX1"], "norm_data.txt is empty"),
    (None, "Probe_ID\tProbe_Set\tRNA_Seq\tRNCMPT00168\n", ["RBFOX1"], "has a header but no rows"),
    (None, "Probe_ID,Probe_Set,RNA_Seq,RNCMPT00168\nP1,SetA,ACGU,1.0\n", ["RBFOX1"], "not tab-separated"),
    (lambda df: df.drop(columns="Probe_Set"), None, ["RBFOX1"], "missing column 'Probe_Set'"),
    (lambda df: df[df.Probe_Set == "SetB"], None, ["RBFOX1"], "no SetA rows"),
    (lambda df: df.assign(RNCMPT00168="high"), None, ["RBFOX1"],
     r"RNCMPT00168 \(RBFOX1\) is not numeric \(e.g. 'high'\)"),
    (None, None, ["NOPE1"], "unknown protein 'NOPE1'"),
    (None, None, ["RNCMPT99999"], "unknown RNAcompete id 'RNCMPT99999'"),
    (lambda df: with_letters(df, 0.25), None, ["RBFOX1"],
     r"2\d\.\d% of bases are not A, C, G, U or N \('X' x"),
])
def test_malformed_course_files_get_one_line_errors(sim_dir, tmp_path, edit, text, proteins, message):
    d = course(sim_dir, tmp_path, edit, text)
    with pytest.raises(UserError, match=message):
        load_rnacompete(d, proteins, cache_dir=tmp_path / "cache")


def test_script_error_is_one_line_without_traceback(sim_dir, tmp_path):
    d = course(sim_dir, tmp_path, text="")
    run = cli("q2_1_cnn_lstm.py", "--data-dir", str(d), "--quick", "--out-dir", str(tmp_path / "f"),
              "--device", "cpu")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert (run.stderr.strip().splitlines()[-1].startswith("error: ")
            and "norm_data.txt is empty" in run.stderr)


@pytest.mark.parametrize("content, message", [
    (b"not a spreadsheet", "not a readable xlsx file"),
    ("wrong-sheet", r"no sheet 'Master List--Plasmid Info' \(sheets: \['Other'\]\)"),
])
def test_bad_metadata_xlsx(sim_dir, tmp_path, content, message):
    d = course(sim_dir, tmp_path, meta=None)
    if content == "wrong-sheet":
        pd.DataFrame({"Motif_ID": ["RNCMPT00168"], "Protein_name": ["RBFOX1"]}).to_excel(d / "metadata.xlsx",
                                                                                         sheet_name="Other")
    else:
        (d / "metadata.xlsx").write_bytes(content)
    with pytest.raises(UserError, match=message):
        load_rnacompete(d, ["RBFOX1"], cache_dir=tmp_path / "cache")


def test_sequence_letters_are_counted_t_read_as_u_and_warned_on_every_run(sim_dir, tmp_path):
    def edit(df):
        df = with_letters(df, 0.004, "X", seed=1)
        return df.assign(RNA_Seq=df.RNA_Seq.where(df.index % 2 == 0, df.RNA_Seq.str.replace("U", "T")))
    d = course(sim_dir, tmp_path, edit)
    splits, first = load_rnacompete(d, ["RBFOX1"], cache_dir=tmp_path / "cache")
    _, cached = load_rnacompete(d, ["RBFOX1"], cache_dir=tmp_path / "cache")      # from the cache this time
    assert cached["warnings"] == first["warnings"]
    text = "\n".join(first["warnings"])
    n_x = pd.read_csv(d / "norm_data.txt", sep="\t").RNA_Seq.str.count("X").sum()
    assert f"'X' x{n_x:,}" in text and "read as N" in text
    assert "T bases read as U" in text
    # T really is U: decoding an even/odd pair of the same simulated probe gives the same one-hot
    src = pd.read_csv(sim_dir / "norm_data.txt", sep="\t")
    assert "T" not in "".join(src.RNA_Seq)


def test_t_encodes_as_u():
    from common.rna.format import encode, one_hot
    codes, _ = encode(["ACGT", "ACGU"])
    assert (one_hot(codes)[0] == one_hot(codes)[1]).all()


def test_notice_says_how_to_get_the_real_data(sim_dir, tmp_path, capsys, monkeypatch):
    import common.rna.fit as q2
    monkeypatch.setattr(q2, "SIMULATED_DIR", str(sim_dir))
    assert q2.resolve_data_dir(str(tmp_path / "none"), explicit=False) == str(sim_dir)
    out = capsys.readouterr().out
    assert "python -m common.rna.download" in out and "simulated" in out
    with pytest.raises(UserError, match="python -m common.rna.download --out"):
        q2.resolve_data_dir(str(tmp_path / "none"), explicit=True)
