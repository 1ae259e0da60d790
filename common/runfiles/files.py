"""Run files: atomic writes, checksums, torch loading, one-line user errors."""
import hashlib
import json
import os
import pickle
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
    _atomic(path, lambda f: fig.savefig(f, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi,
                                        bbox_inches="tight"))


class CorruptFile(UserError, ValueError):
    """A results file that exists but cannot be parsed (truncated, or not JSON / not a torch file)."""


def read_json(path):
    """The JSON in path; a file that is not valid JSON (e.g. truncated) raises CorruptFile naming it."""
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except ValueError as e:
        raise CorruptFile(f"{path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}; "
                          f"{len(text):,} bytes): it was cut short or edited; restore it "
                          f"(git checkout -- {path}) or rerun the script that writes it") from None


def load_torch(path, fix, **kwargs):
    """torch.load(path); a truncated or corrupt file raises CorruptFile naming it and the fix."""
    try:
        return torch.load(path, **kwargs)
    except FileNotFoundError:
        raise
    except (RuntimeError, EOFError, ValueError, OSError, pickle.UnpicklingError) as e:
        raise CorruptFile(f"{path} is corrupt or truncated ({type(e).__name__}); {fix}") from None


def source_name(data):
    """The data source as figures and tables name it: the simulator's preset is part of it ('simulated'
    records written before presets existed came from the easy preset)."""
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
    """A path as metrics files record it: relative to the repository when inside it, else the file name
    alone (no absolute paths, user names or host names in committed results; the MD5 beside it identifies the
    file)."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path(__file__).resolve().parents[2]))
    except ValueError:
        return path.name


def timestamp(t=None):
    """Local time `t` (seconds since the epoch; default now) as ISO 8601 with the UTC offset."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))
