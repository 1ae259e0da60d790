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


@lru_cache(maxsize=1)
def code_version():
    """The code that makes a record: git commit, whether the work tree had uncommitted changes (untracked
    files count), and the command line. Taken once per process, at its first call (setup_device makes that
    call when a script starts), so that a long run names the code it started with. commit and dirty are None
    outside a git checkout, or where git is not installed."""
    def git(*cmd):
        try:
            out = subprocess.run(["git", "-C", str(REPO), *cmd], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout if out.returncode == 0 else None
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain") if commit else None
    return {"git_commit": commit.strip() if commit else None,
            "git_dirty": None if status is None else bool(status.strip()), "argv": redacted_argv(sys.argv)}


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
