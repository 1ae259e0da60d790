"""Run files: atomic writes, checksums, environment records, one-line user errors."""
import hashlib
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import torch


class UserError(Exception):
    """A mistake the user can fix. Scripts print its one-line message and exit 2, with no traceback."""


def exit_on_user_error(main):
    """Run main(); turn a UserError into one line on stderr and exit code 2."""
    try:
        return main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def _atomic(path, write):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)   # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_with(path, write):
    """Write path atomically with write(f) on a binary temporary file in the same folder; renamed only when
    write returns. If write raises, the temporary file is removed and path is left as it was."""
    _atomic(path, write)


def write_json(path, obj):
    """Write JSON atomically: a temporary file in the same folder, then a rename."""
    _atomic(path, lambda f: f.write(json.dumps(obj, indent=1, sort_keys=False).encode()))


def write_text(path, text):
    _atomic(path, lambda f: f.write(text.encode()))


def save_torch(path, obj):
    """torch.save atomically, so an interrupted save never corrupts the last checkpoint."""
    _atomic(path, lambda f: torch.save(obj, f))


def save_figure(fig, path, dpi=130):
    """Save a matplotlib figure atomically (png)."""
    _atomic(path, lambda f: fig.savefig(f, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight"))


class CorruptFile(UserError, ValueError):
    """A results file that exists but cannot be parsed (truncated, or not JSON / not a torch file)."""


def read_json(path):
    """The JSON in path; a file that is not valid JSON (e.g. truncated) raises CorruptFile naming it."""
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except ValueError as e:
        raise CorruptFile(f"{path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}; {len(text):,} bytes): "
                          f"it was cut short or edited; restore it (git checkout -- {path}) or rerun the script that "
                          f"writes it") from None


def load_torch(path, fix, **kwargs):
    """torch.load(path); a truncated or corrupt file raises CorruptFile naming it and the fix."""
    try:
        return torch.load(path, **kwargs)
    except FileNotFoundError:
        raise
    except (RuntimeError, EOFError, ValueError, OSError, pickle.UnpicklingError) as e:
        raise CorruptFile(f"{path} is corrupt or truncated ({type(e).__name__}); {fix}") from None


def source_name(data):
    """The data source as figures and tables name it: the simulator's preset is part of it ('simulated' records
    written before presets existed came from the easy preset)."""
    if data.get("source") == "simulated":
        return f"simulated/{data.get('preset') or 'easy'}"
    return data["source"]


def md5_file(path, chunk=1 << 20):
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def portable_path(path):
    """A path as metrics files record it: relative to the repository when inside it, else the file name alone
    (no absolute paths, user names or host names in committed results; the MD5 beside it identifies the file)."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path(__file__).resolve().parent.parent))
    except ValueError:
        return path.name


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timestamp(t=None):
    """Local time `t` (seconds since the epoch; default now) as ISO 8601 with the UTC offset."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


REPO = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def code_version():
    """The code that makes a record: git commit, whether the work tree had uncommitted changes (untracked files
    count), and the command line. Taken once per process, at its first call (setup_device makes that call when a
    script starts), so that a long run names the code it started with. commit and dirty are None outside a git
    checkout, or where git is not installed."""
    def git(*cmd):
        try:
            out = subprocess.run(["git", "-C", str(REPO), *cmd], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout if out.returncode == 0 else None
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain") if commit else None
    return {"git_commit": commit.strip() if commit else None, "git_dirty": None if status is None else bool(status.strip()),
            "argv": redacted_argv(sys.argv)}


def redacted_argv(argv):
    """The command line with every URL cut to its scheme (a --storage URL carries a user, a host, perhaps a
    password: results never name them)."""
    def cut(arg):
        key, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        if "://" not in value:
            return arg
        return f"{key}{eq}{value.split('://', 1)[0]}://(redacted)"
    return [cut(a) for a in argv]


def environment(device):
    """What a result depends on besides config and data: device, versions, threads, and the code (code_version)."""
    dev = torch.device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_model()
    return {
        "device": str(dev),
        "device_name": name,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "written": timestamp(),   # when the record was made (before 2026-11-30: "started")
        "code": code_version(),   # before 2026-12-01 records have none
    }


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, owned by another user
        return True
    return True


class RunLock:
    """A lock file per run folder (<folder>/.lock, holding the owner's pid), so that two processes never train
    into one run folder. Taken with O_EXCL; a lock whose pid is dead (a killed run) is taken over with a notice.
    Use as a context manager; released on exit, also on an exception."""

    def __init__(self, folder):
        self.path = Path(folder) / ".lock"
        self.held = False

    def acquire(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is None:   # being written by its owner this instant, or empty: look again
                    time.sleep(0.05)
                    owner = self._owner()
                if owner and _pid_alive(owner["pid"]) and owner["pid"] != os.getpid():
                    raise UserError(f"{self.path.parent} is in use by another process (pid {owner['pid']}, started "
                                    f"{owner.get('started', '?')}: {owner.get('command', '?')}); wait for it to finish or stop "
                                    f"it, or use another --out-dir/--run-dir") from None
                print(f"notice: taking over the stale lock of {self.path.parent} (pid {owner['pid'] if owner else '?'} is not "
                      f"running)", file=sys.stderr)
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": os.getpid(), "started": timestamp(), "command": " ".join(sys.argv)[:300]}, f)
            self.held = True
            return self
        raise UserError(f"could not take the lock {self.path}; delete it if no run is using {self.path.parent}")

    def _owner(self):
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def release(self):
        if self.held:
            owner = self._owner()
            if owner is None or owner.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
