"""What happens to real users' runs: a second process on one run, a corrupt checkpoint or metrics file,
SIGTERM, and --help. Each case ends in one clear line (no traceback) and never in a half-written or
overwritten result.

Run: python -m pytest -q tests/test_robustness.py
"""
import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from common.runfiles.files import UserError
from common.runfiles.locks import RunLock

SCRIPTS = ["q1_1_cnn.py", "q1_2_maxpool.py", "q1_softmax_study.py", "q2_1_cnn_lstm.py", "q2_2_attention.py",
           "q2_3_multi_protein.py", "interpret_cnn.py", "make_figures.py"]


def q1_2(blood_npz, out, *extra, **kw):
    """q1_2_maxpool.py (logits, seed 0, tiny data) into out: the subprocess.run result."""
    args = [sys.executable, "q1_2_maxpool.py", "--npz", str(blood_npz), "--out-dir", str(out / "fig"),
            "--run-dir", str(out / "runs"), "--variant", "logits", "--device", "cpu", "--quick", *extra]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, **kw)


def metrics(out):
    return json.loads((out / "fig" / "q1_2_quick" / "logits" / "metrics.json").read_text())


def wait_for_an_epoch(proc):
    """Read the process's output until it reports a finished epoch (it is training, with its run lock
    held)."""
    for line in proc.stdout:
        if " epoch " in line:
            return
    raise AssertionError(f"the run ended before its first epoch: {proc.stderr.read()}")


def no_times(history):
    return [{k: v for k, v in h.items() if "seconds" not in k} for h in history]


def test_run_lock_refuses_a_live_owner_takes_over_a_dead_one_and_releases(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".lock").write_text(json.dumps({"pid": holder.pid, "started": "then",
                                                    "command": "train.py"}))
        with pytest.raises(UserError, match=f"{tmp_path} is in use by another process \\(pid {holder.pid}"):
            RunLock(tmp_path).acquire()
        # the owner's lock is left alone
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path):                           # the owner is dead now: its lock is stale
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    assert "taking over the stale lock" in capsys.readouterr().err
    assert not (tmp_path / ".lock").exists()
    with pytest.raises(RuntimeError):
        with RunLock(tmp_path):
            raise RuntimeError("a crash inside the run")
    assert not (tmp_path / ".lock").exists()           # released on an exception too


def test_a_second_process_on_the_same_run_refuses_at_once(tmp_path, blood_npz):
    first = subprocess.Popen([sys.executable, "q1_2_maxpool.py", "--npz", str(blood_npz), "--out-dir",
                              str(tmp_path / "fig"), "--run-dir", str(tmp_path / "runs"), "--variant",
                              "logits", "--device", "cpu", "--quick", "--epochs", "400"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_an_epoch(first)
        t0 = time.time()
        second = q1_2(blood_npz, tmp_path, "--epochs", "400")
        assert second.returncode == 2 and "Traceback" not in second.stderr and time.time() - t0 < 60
        line = second.stderr.strip()
        assert ("\n" not in line and f"pid {first.pid}" in line and "q1_2_quick" in line
                and "in use by another process" in line)
    finally:
        first.kill()
        first.wait()
    # Several seeds in one process keep working (each seed its own lock, taken in turn); the killed run's lock
    # is stale.
    ok = q1_2(blood_npz, tmp_path / "seeds", "--epochs", "1", "--seeds", "0", "1")
    assert ok.returncode == 0, ok.stderr
    assert not list((tmp_path / "seeds").rglob(".lock"))


def test_a_corrupt_checkpoint_gets_one_line_naming_the_file_and_the_fix(tmp_path, blood_npz):
    # stops after epoch 1
    assert q1_2(blood_npz, tmp_path, "--epochs", "2", "--stop-at", "1").returncode == 0
    ckpt = tmp_path / "runs" / "q1_2_quick" / "logits" / "checkpoint.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])   # truncated, as by a full disk
    bad = q1_2(blood_npz, tmp_path, "--epochs", "2", "--resume")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    line = bad.stderr.strip()
    assert ("\n" not in line and str(ckpt) in line and "corrupt or truncated" in line
            and "without --resume" in line)
    assert "delete the file" in line


def test_a_corrupt_metrics_file_is_named_and_allow_missing_draws_the_rest(tmp_path, blood_npz):
    assert q1_2(blood_npz, tmp_path, "--epochs", "1", "--seeds", "0").returncode == 0
    figs = tmp_path / "fig"
    for exp in ("q1_1", "q1_2"):   # the quick run stands in for both experiments' results
        shutil.copytree(figs / "q1_2_quick" / "logits", figs / exp / "logits")
    path = figs / "q1_2" / "logits" / "seed0" / "metrics.json"
    good = path.read_text()
    path.write_text(good[: len(good) // 2])
    run = lambda *a: subprocess.run([sys.executable, "make_figures.py", "--figures", str(figs), *a], cwd=ROOT,
                                    capture_output=True, text=True, timeout=300)
    bad = run()
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().count("\n") == 0 and str(path) in bad.stderr and "not valid JSON" in bad.stderr
    ok = run("--allow-missing")
    assert ok.returncode == 0 and "Traceback" not in ok.stderr
    assert "warning: skipped" in ok.stderr and str(path) in ok.stderr
    assert (figs / "q1_1" / "curves.png").is_file() and (figs / "RESULTS.md").is_file()  # the rest was drawn
    # and nothing was "repaired"
    assert path.read_text() == good[: len(good) // 2]


def test_sigterm_stops_at_an_epoch_end_and_resume_equals_an_uninterrupted_run(tmp_path, blood_npz):
    full = q1_2(blood_npz, tmp_path / "full", "--epochs", "12")
    assert full.returncode == 0, full.stderr
    proc = subprocess.Popen([sys.executable, "q1_2_maxpool.py", "--npz", str(blood_npz), "--out-dir",
                             str(tmp_path / "part" / "fig"), "--run-dir", str(tmp_path / "part" / "runs"),
                             "--variant", "logits", "--device", "cpu", "--quick", "--epochs", "12"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_an_epoch(proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "Traceback" not in err and "--resume" in out + err
    part = metrics(tmp_path / "part")
    assert part["status"] == "interrupted" and 1 <= part["epochs_run"] < 12
    assert (tmp_path / "part" / "runs" / "q1_2_quick" / "logits" / "checkpoint.pt").is_file()
    resumed = q1_2(blood_npz, tmp_path / "part", "--epochs", "12", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a, b = metrics(tmp_path / "part"), metrics(tmp_path / "full")
    assert (a["status"] == "complete" and no_times(a["history"]) == no_times(b["history"])
            and a["test"] == b["test"])


def test_sigterm_in_a_search_fails_the_trial_without_a_traceback_and_resume_retries_it(tmp_path):
    import pandas as pd
    import torch

    from common.rna.simulate import simulate
    simulate(tmp_path / "sim", seed=2, n_seta=600, n_setb=300, proteins=["RBFOX1"], preset="easy")
    args = [sys.executable, "q2_1_cnn_lstm.py", "--data-dir", str(tmp_path / "sim"), "--model", "cnn",
            "--quick", "--epochs", "30", "--patience", "30", "--trials", "2",
            "--out-dir", str(tmp_path / "f"), "--run-dir", str(tmp_path / "r")]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_an_epoch(proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143 and "Traceback" not in err and "--resume" in err.splitlines()[-1]
    resumed = subprocess.run(args + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    trials = pd.read_csv(tmp_path / "f" / "q2_1_quick" / "cnn" / "trials.csv")
    assert list(trials.state) == ["FAIL", "COMPLETE", "COMPLETE"]
    search = json.loads((tmp_path / "f" / "q2_1_quick" / "cnn" / "metrics.json")
                        .read_text())["config"]["search"]
    # the budget counts finished trials only
    assert (search["trials"], search["failed_and_retried"]) == (2, 1)
    # the interrupted trial is rerun with its parameters
    first, retry = trials.iloc[0], trials.iloc[1]
    assert all(first[c] == retry[c] for c in trials.columns if c.startswith("params_"))
    # ... from its checkpoint, and it ends exactly as the same trial run without an interruption
    assert retry["user_attrs_retry_of"] == 0 and 1 <= retry["user_attrs_resumed_after_epoch"] < 30
    assert "continuing trial 0 from its checkpoint" in resumed.stdout
    assert not list((tmp_path / "r").rglob("*.ckpt"))     # finished trials leave no checkpoint behind
    plain = [a if a != str(tmp_path / "r") else str(tmp_path / "r2") for a in args]
    plain = [a if a != str(tmp_path / "f") else str(tmp_path / "f2") for a in plain]
    assert subprocess.run(plain, cwd=ROOT, capture_output=True, text=True, timeout=300).returncode == 0
    uninterrupted = pd.read_csv(tmp_path / "f2" / "q2_1_quick" / "cnn" / "trials.csv").iloc[0]
    assert retry["value"] == uninterrupted["value"]
    a = torch.load(tmp_path / "r" / "q2_1_quick" / "cnn" / "trial1.pt", weights_only=False)
    b = torch.load(tmp_path / "r2" / "q2_1_quick" / "cnn" / "trial0.pt", weights_only=False)
    assert no_times(a["history"]) == no_times(b["history"]) and all(torch.equal(a["state"][k], b["state"][k])
                                                                    for k in a["state"])


@pytest.mark.filterwarnings("ignore:'common.rna.simulate' found in sys.modules:RuntimeWarning")
@pytest.mark.parametrize("script", SCRIPTS + ["-m common.rna.simulate"])
def test_help_states_each_default_once(script, monkeypatch, capsys):
    # In this process (runpy), not a subprocess: the same argparse code, without a torch import per script.
    monkeypatch.setattr(sys, "argv", [script.split()[-1], "--help"])
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as stop:
        if script.startswith("-m"):
            runpy.run_module(script.split()[1], run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(str(ROOT / script), run_name="__main__")
    out = capsys.readouterr().out
    assert stop.value.code == 0
    options = " ".join(out.split()).split(" -")          # one chunk of text per flag
    assert [o for o in options if o.count("(default") > 1] == []
    assert "(default" in out


def test_resume_of_an_early_stopped_run_trains_nothing_and_stays_early_stopped(tmp_path):
    """--resume meeting a run that early stopping ended: 0 epochs trained (so its metrics file is kept as it
    is), stopped_early still True, the same history and selection."""
    import torch

    from common.training.loop import FitConfig, fit
    x, y = torch.randn(64, 3), torch.randn(64)

    def run(resume):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss = lambda m, idx: ((m(x[idx]).squeeze(-1) - y[idx]) ** 2).mean()
        score = iter([0.5, 0.4, 0.3, 0.2, 0.1] * 2)   # best at epoch 1, so patience 2 stops after epoch 3
        cfg = FitConfig(epochs=10, batch_size=16, seed=0, select="score", patience=2)
        return fit(model, opt, loss, 64, lambda m: {"score": next(score)}, cfg, "cpu",
                   ckpt_path=tmp_path / "ck.pt", resume=resume)

    first = run(False)
    assert first["stopped_early"] and len(first["history"]) == 3 and first["epochs_trained"] == 3
    again = run(True)
    assert again["epochs_trained"] == 0 and again["stopped_early"] and again["history"] == first["history"]
    assert again["best"] == first["best"]


def test_code_version_outside_a_git_checkout_is_null(tmp_path, monkeypatch):
    from common.runfiles import provenance as runio
    runio.code_version.cache_clear()
    monkeypatch.setattr(runio, "REPO", tmp_path)   # no .git here, nor above /tmp
    try:
        v = runio.code_version()
        assert (v["git_commit"] is None and v["git_dirty"] is None
                and v["argv"] == runio.redacted_argv(sys.argv))
    finally:
        runio.code_version.cache_clear()
    inside = runio.code_version()
    assert inside["git_commit"] is None or len(inside["git_commit"]) == 40


def test_code_version_counts_code_changes_not_results(tmp_path, monkeypatch):
    """A record's git_dirty says whether code was uncommitted; results written under figures/ (a queue's own
    records) do not make it dirty, and the changed code paths are named."""
    import subprocess

    from common.runfiles import provenance as runio
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t",
                                     *a], check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "figures").mkdir()
    for f in ("a.py", "figures/r.json"):
        (tmp_path / f).write_text("1\n")
    git("add", ".")
    git("commit", "-q", "-m", "x")
    monkeypatch.setattr(runio, "REPO", tmp_path)
    try:
        for change, dirty, paths in ((None, False, []), ("figures/r.json", False, []),
                                     ("figures/new/metrics.json", False, []), ("a.py", True, ["a.py"]),
                                     ("common/b.py", True, ["a.py", "common/b.py"])):
            if change:
                (tmp_path / change).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / change).write_text("2\n")
            runio.code_version.cache_clear()
            v = runio.code_version()
            assert (v["git_dirty"], v["git_dirty_paths"]) == (dirty, paths), change
    finally:
        runio.code_version.cache_clear()
    assert runio.dirty_code_paths('R  old.py -> new.py\n?? figures/x.json\n M "odd name.py"\n') == [
        "new.py", "odd name.py", "old.py"]


def test_records_never_name_a_storage_url():
    from common.runfiles.provenance import redacted_argv
    argv = ["q2_1_cnn_lstm.py", "--storage", "postgresql+psycopg2://user:secret@db.example:5432/optuna",
            "--storage=mysql://u:p@h/db", "--trials", "5", "runs/journal.log"]
    assert redacted_argv(argv) == ["q2_1_cnn_lstm.py", "--storage", "postgresql+psycopg2://(redacted)",
                                   "--storage=mysql://(redacted)", "--trials", "5", "runs/journal.log"]


def _sigterm_after(cmd, first_line, tmp_path):
    """Start cmd, send SIGTERM once stdout shows first_line, and return (returncode, stdout, stderr)."""
    import signal
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    p = subprocess.Popen([sys.executable, *cmd], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    out = []
    for line in p.stdout:
        out.append(line)
        if first_line in line:
            p.send_signal(signal.SIGTERM)
            break
    rest, err = p.communicate(timeout=300)
    return p.returncode, "".join(out) + rest, err


def _no_half_written_file(folder):
    files = [f for f in Path(folder).rglob("*") if f.is_file()]
    assert not [f for f in files if f.name.endswith(".tmp")], "a temporary file was left behind"
    for f in files:
        if f.suffix == ".json":
            json.loads(f.read_text())   # every record parses: none is half written
    return files


@pytest.mark.parametrize("script, first_line", [("q2_3_multi_protein.py", "epoch  1/2"),
                                                 ("q1_softmax_study.py", "seed   0:")])
def test_sigterm_ends_without_traceback_and_leaves_no_half_written_file(script, first_line, tmp_path,
                                                                        blood_npz):
    from common.rna.simulate import simulate
    if script.startswith("q2"):
        simulate(tmp_path / "sim", seed=5, n_seta=500, n_setb=300)
        data = ["--data-dir", str(tmp_path / "sim"), "--proteins", "RBFOX1", "sim-QKI", "sim-PUM1"]
    else:
        data = ["--npz", str(blood_npz), "--epochs", "3"]
    # the study keeps no checkpoints
    runs = ["--run-dir", str(tmp_path / "r")] if script.startswith("q2") else []
    rc, out, err = _sigterm_after([script, "--quick", *data, "--out-dir", str(tmp_path / "f"), *runs,
                                   "--device", "cpu"], first_line, tmp_path)
    assert rc in (0, 143) and "Traceback" not in err, (rc, err[-1500:])
    assert rc == 143, f"SIGTERM came after the last epoch; make the run longer ({out[-500:]})"
    files = _no_half_written_file(tmp_path / "f")
    if script.startswith("q2"):   # the arm SIGTERM stopped says so, and --resume continues it
        interrupted = [f for f in files
                       if f.name == "metrics.json" and json.loads(f.read_text())["status"] == "interrupted"]
        assert len(interrupted) == 1 and "--resume" in out


@pytest.mark.parametrize("script, absent", [
    ("q1_softmax_study.py", ["--resume", "--run-dir", "--checkpoint-every", "--channels-last"]),
    ("q2_3_multi_protein.py", ["--checkpoint-every", "--channels-last"]),
    ("q2_2_attention.py", ["--channels-last"]),
    ("q1_1_cnn.py", [])])
def test_each_script_offers_only_the_flags_it_honours(script, absent, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    with pytest.raises(SystemExit):
        runpy.run_path(str(Path(ROOT) / script), run_name="__main__")
    text = capsys.readouterr().out
    assert "--epochs" in text and "--quick" in text and "--force" in text
    assert not [f for f in absent if f in text], f"{script} offers flags it ignores"


@pytest.mark.parametrize("script, default", [("q2_3_multi_protein.py", [1, 2, 3]),
                                             ("q2_2_attention.py", [1, 2, 3, 4, 5]),
                                             ("q1_softmax_study.py", list(range(20)))])
def test_seed_gives_that_one_seed_in_scripts_with_a_seed_list(script, default, monkeypatch):
    """--seed N (or --seed=N) runs that seed; no flag runs the script's seed list (no argv inspection)."""
    monkeypatch.setattr(sys, "argv", [script])
    module = runpy.run_path(str(Path(ROOT) / script), run_name="not_main")
    assert module["parse_args"]([])[0].seeds == default
    for argv in (["--seed", "4"], ["--seed=4"], ["--seed", "4", "--quick"]):
        assert module["parse_args"](argv)[0].seeds == [4]


@pytest.mark.parametrize("script, mode, argv, named", [
    ("q2_1_cnn_lstm.py", ["--retrain-selected", "--seeds", "1"], ["--lr", "0.01"], "--lr"),
    ("q2_1_cnn_lstm.py", ["--retrain-selected", "--seeds", "1"], ["--batch=128"], "--batch-size"),
    ("q2_1_cnn_lstm.py", ["--retrain-selected", "--seeds", "1"], ["--lr", "1e-3", "--batch-size", "64"],
     "--lr and --batch-size"),
    ("q2_2_attention.py", ["--setting", "tuned"], ["--lr", "0.002"], "--lr")])
def test_a_flag_that_a_mode_would_ignore_is_refused_in_one_line(script, mode, argv, named, monkeypatch,
                                                                capsys):
    """--lr/--batch-size under a mode that trains a recorded selection with its own: a one-line error
    (also for an abbreviated flag, --flag=value, or a value equal to the default); without them the mode
    parses."""
    monkeypatch.setattr(sys, "argv", [script])
    module = runpy.run_path(str(Path(ROOT) / script), run_name="not_main")
    with pytest.raises(SystemExit) as e:
        module["parse_args"](mode + argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"{named} would be ignored" in err and "Traceback" not in err
    assert module["parse_args"](mode)[0].lr is not None


def test_force_with_resume_on_a_finished_run_returns_its_record(tmp_path):
    """--force --resume on a finished run whose checkpoint holds nothing more to train keeps and returns the
    record (run_once returned None there, which callers took for a deadline stop)."""
    from common.runfiles.files import write_json
    from common.runfiles.lifecycle import RunFiles, run_once
    files = RunFiles.under(tmp_path / "f", tmp_path / "r", "exp", "v")
    history = [{"epoch": 1, "seconds": 1.0}]
    rec = {"status": "complete", "epochs_run": 1, "best": {"epoch": 1}, "history": history}
    write_json(files.metrics, rec)
    files.checkpoint.parent.mkdir(parents=True)
    files.checkpoint.write_bytes(b"x")
    result = {"history": history, "best": {"epoch": 1}, "epochs_trained": 0}
    out = run_once(files, resume=True, force=True, train=lambda from_checkpoint: result,
                   record=lambda res, finished: {"new": True}, label="t")
    assert out == rec
