"""What a record says made it: the device, the versions and the code (commit, dirty, argv)."""
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import torch

from common.runfiles.files import timestamp


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


REPO = Path(__file__).resolve().parents[2]


RESULT_DIRS = ("figures/",)   # what the scripts write (data/, runs/ and logs/ are ignored by git anyway)
MAX_DIRTY_PATHS = 20


@lru_cache(maxsize=1)
def code_version():
    """The code that makes a record: git commit, whether the work tree had uncommitted changes to the code,
    which paths those are (at most 20), and the command line. Results (figures/) do not count: a queue that
    commits each record from its own worktree leaves the next ones uncommitted, which changes no code
    (records before 2026-12-03 counted them, so their git_dirty is true there and they have no
    git_dirty_paths). Taken once per process, at its first call (setup_device makes that call when a script
    starts), so that a long run names the code it started with. commit and dirty are None outside a git
    checkout, or where git is not installed."""
    def git(*cmd):
        try:
            out = subprocess.run(["git", "-C", str(REPO), *cmd], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout if out.returncode == 0 else None
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=all") if commit else None
    paths = None if status is None else dirty_code_paths(status)
    return {"git_commit": commit.strip() if commit else None,
            "git_dirty": None if paths is None else bool(paths),
            "git_dirty_paths": None if paths is None else paths[:MAX_DIRTY_PATHS],
            "argv": redacted_argv(sys.argv)}


def dirty_code_paths(porcelain):
    """The changed paths of `git status --porcelain` output that are code, not results: both sides of a
    rename, sorted."""
    paths = set()
    for line in porcelain.splitlines():
        if len(line) > 3:
            paths.update(s.strip().strip('"') for s in line[3:].split(" -> "))
    return sorted(p for p in paths if not p.startswith(RESULT_DIRS))


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
    """What a result depends on besides config and data: device, versions, threads, and the code
    (code_version)."""
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
