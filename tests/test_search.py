"""Searches shared by processes and machines: 2 workers on a journal file, resume, a real PostgreSQL server,
crashes.

Run: python -m pytest -q tests/test_search.py

The PostgreSQL test starts a throw-away cluster (initdb + pg_ctl, as the postgres user when run as root) in a
temp dir on 127.0.0.1 and a free port, and stops it afterwards. Without the binaries it is skipped, saying
why.
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest
from conftest import ROOT

from common.rna.simulate import simulate
from common.runfiles.files import UserError
from common.runfiles.search import FINISHED, fail_and_retry_orphans, make_storage, split_trials


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    simulate(d, seed=6, n_seta=600, n_setb=300, proteins=["RBFOX1"])
    return d


def search(sim_dir, tmp_path, storage, trials, *extra):
    run = subprocess.run([sys.executable, "q2_1_cnn_lstm.py", "--data-dir", str(sim_dir), "--quick",
                          "--model", "cnn", "--trials", str(trials), "--workers", "2",
                          "--storage", str(storage), "--device", "cpu", "--out-dir", str(tmp_path / "f"),
                          "--run-dir", str(tmp_path / "r"), *extra],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return run


def the_study(storage):
    st = make_storage(storage)
    (name,) = optuna.get_all_study_names(st)
    return optuna.load_study(study_name=name, storage=st)


def check_trials(study, n):
    done = study.get_trials(states=FINISHED)
    assert len(done) == n and len(study.trials) == n                       # exactly n, none failed or running
    assert len({t.number for t in done}) == n
    assert len({tuple(sorted(t.params.items())) for t in done}) == n       # distinct configurations
    return done


def test_split_trials():
    assert (split_trials(5, 2) == [3, 2] and split_trials(2, 4) == [1, 1, 0, 0]
            and sum(split_trials(7, 3)) == 7)


def test_two_workers_share_a_journal_file_and_resume_adds_only_the_missing(sim_dir, tmp_path):
    journal = tmp_path / "study.journal"
    search(sim_dir, tmp_path, journal, 4)
    done = check_trials(the_study(journal), 4)
    assert {t.user_attrs["worker"] for t in done} == {0, 1}                # both workers ran trials
    assert done[0].params["kernel"] == 12 and done[0].params["lr"] == 1e-3  # trial 0: the homework default
    assert (tmp_path / "f" / "q2_1_quick" / "cnn" / "metrics.json").is_file()
    run = search(sim_dir, tmp_path, journal, 6, "--resume")
    done6 = check_trials(the_study(journal), 6)
    assert {t.number for t in done6} - {t.number for t in done} == {4, 5}  # exactly 2 new trials
    assert "2 trials over 2 worker processes" in run.stdout
    metrics = tmp_path / "f" / "q2_1_quick" / "cnn" / "metrics.json"
    before = metrics.read_text()
    # nothing new to run: the record is kept
    run = search(sim_dir, tmp_path, journal, 6, "--resume")
    assert "search finished earlier" in run.stdout and metrics.read_text() == before
    check_trials(the_study(journal), 6)


def test_crashed_worker_trial_is_failed_and_retried(tmp_path):
    study = optuna.create_study(storage=make_storage(tmp_path / "j.journal"), study_name="s")
    t = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})     # a trial whose worker then dies
    assert fail_and_retry_orphans(study) == [t.number]
    states = [x.state for x in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    retry = study.trials[1]
    assert retry.system_attrs["fixed_params"] == t.params and retry.user_attrs["retry_of"] == t.number
    again = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})   # the next worker takes the retry
    assert again.number == 1 and again.params == t.params


def test_bad_storage_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match="unknown URL scheme"):
        make_storage("redis://localhost/0")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError, match="cannot open the database"):
        make_storage(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres?connect_timeout=3")


def pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    path = found[-1] if found else shutil.which("initdb")
    return Path(path).parent if path else None


@pytest.fixture
def postgres_url():
    bindir = pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or on PATH")
    base = Path(tempfile.mkdtemp(prefix="pgtest-"))
    as_user = []
    if os.geteuid() == 0:   # initdb refuses to run as root: run the server as the postgres user
        try:
            pg = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server as")
        os.chown(base, pg.pw_uid, pg.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = base / "data"
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                    f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_two_workers_share_a_postgresql_study(sim_dir, tmp_path, postgres_url):
    search(sim_dir, tmp_path, postgres_url, 4)
    done = check_trials(the_study(postgres_url), 4)
    assert {t.user_attrs["worker"] for t in done} == {0, 1}
    m = (tmp_path / "f" / "q2_1_quick" / "cnn" / "metrics.json").read_text()
    # the storage is a run option, recorded with its scheme only: no credentials or hosts in results
    assert '"storage": "postgresql+psycopg2://..."' in m and "postgres@" not in m
    # a second machine joining with --search-only and a larger budget adds exactly the missing trials
    run = subprocess.run([sys.executable, "q2_1_cnn_lstm.py", "--data-dir", str(sim_dir), "--quick",
                          "--model", "cnn", "--trials", "5", "--storage", postgres_url, "--search-only",
                          "--device", "cpu", "--out-dir", str(tmp_path / "g"),
                          "--run-dir", str(tmp_path / "s")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    check_trials(the_study(postgres_url), 5)
    assert not (tmp_path / "g").exists()                                   # a helper writes no results
