"""Run files: atomic writes, checksums, environment records, one-line user errors."""
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
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
        raise SystemExit(2)


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


def read_json(path):
    with open(path) as f:
        return json.load(f)


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


def environment(device):
    """What a result depends on besides config and data: device, versions, threads."""
    dev = torch.device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_model()
    return {
        "device": str(dev),
        "device_name": name,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "written": timestamp(),   # when the record was made (before 2026-11-30: "started")
    }
