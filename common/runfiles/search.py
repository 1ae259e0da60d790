"""Optuna plumbing for searches shared by processes and machines: storages, trial budgets, crashed trials.

- A path (the default is a file under runs/) is a JournalStorage on a JournalFileBackend: safe for several
  processes on one machine, or on a filesystem that several machines share.
- postgresql://, mysql:// and sqlite:/// URLs are RDBStorage, with a heartbeat: a trial whose worker dies is
  marked FAIL after the grace period and retried once by RetryHeartbeatStaleTrialCallback.
"""
import os
import warnings
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from common.runfiles.files import UserError

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
URL_SCHEMES = ("postgresql", "mysql", "sqlite")
HEARTBEAT_S, GRACE_S = 30, 120


def is_url(storage):
    return "://" in str(storage) and str(storage).split("://")[0].split("+")[0] in URL_SCHEMES


def make_storage(storage):
    """An Optuna storage from --storage: a database URL (RDBStorage with heartbeat) or a journal file path."""
    if is_url(storage):
        try:
            with warnings.catch_warnings():   # the heartbeat arguments are marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(str(storage), heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                  heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
                                  engine_kwargs={"pool_pre_ping": True})
        except ImportError as e:
            raise UserError(f"--storage {storage}: the database driver is missing ({e}); "
                            "pip install -r requirements.txt") from None
        except Exception as e:   # connection refused, bad credentials, unknown database
            raise UserError(f"--storage {storage}: cannot open the database "
                            f"({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if "://" in str(storage):
        raise UserError(f"--storage {storage}: unknown URL scheme; "
                        "use postgresql://, mysql://, sqlite:/// or a file path")
    path = Path(storage)
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def stored_trials(storage, study_name):
    """Finished trials of study_name in storage (a journal path or a database URL); 0 when the journal file or
    the study is not there. Creates neither."""
    if not is_url(storage) and not Path(storage).is_file():
        return 0
    try:
        return finished(optuna.load_study(study_name=study_name, storage=make_storage(storage)))
    except KeyError:
        return 0


def redact(storage):
    """--storage as results record it: a database URL keeps only its scheme (no user, password or host),
    a journal path is made relative to the repository."""
    if not storage:
        return None
    if "://" in str(storage):
        return str(storage).split("://")[0] + "://..."
    from common.runfiles.files import portable_path
    return portable_path(storage)


def finished(study):
    """Number of trials that count towards --trials: completed or pruned (not failed, not running)."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def split_trials(n, workers):
    """n trials over workers as evenly as possible, e.g. split_trials(5, 2) == [3, 2]."""
    return [n // workers + (i < n % workers) for i in range(workers)]


def fail_and_retry_orphans(study):
    """Trials left RUNNING by workers that have exited (a crash, a kill) are marked FAIL and enqueued again
    with the same parameters, so that the budget is met. Call only when no worker of this study is alive
    (the journal file backend has no heartbeat; database storages do this themselves)."""
    orphans = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in orphans:
        study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
    return [t.number for t in orphans]


def worker_device(index, device):
    """One GPU per worker when there are several; otherwise every worker uses the given device."""
    if device.startswith("cuda"):
        import torch
        n = torch.cuda.device_count()
        if n > 1:
            return f"cuda:{index % n}"
    return device


def worker_threads(workers, cores=None):
    """CPU threads per local worker: the cores split between them, at least one each."""
    return max(1, (cores or os.cpu_count() or 1) // workers)


def quiet():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
