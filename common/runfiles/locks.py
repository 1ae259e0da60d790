"""One process per run folder: a lock file holding the owner's pid."""
import json
import os
import sys
import time
from pathlib import Path

from common.runfiles.files import UserError, timestamp
from common.runfiles.provenance import redacted_argv


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, owned by another user
        return True
    return True


class RunLock:
    """A lock file per run folder (<folder>/.lock, holding the owner's pid), so that two processes never
    train into one run folder. Taken with O_EXCL; a lock whose pid is dead (a killed run) is taken over with a
    notice. Use as a context manager; released on exit, also on an exception."""

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
                    raise UserError(f"{self.path.parent} is in use by another process (pid {owner['pid']}, "
                                    f"started {owner.get('started', '?')}: {owner.get('command', '?')}); "
                                    "wait for it to finish or stop it, "
                                    "or use another --out-dir/--run-dir") from None
                print(f"notice: taking over the stale lock of {self.path.parent} "
                      f"(pid {owner['pid'] if owner else '?'} is not running)", file=sys.stderr)
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": os.getpid(), "started": timestamp(),
                           "command": " ".join(redacted_argv(sys.argv))[:300]}, f)
            self.held = True
            return self
        raise UserError(f"could not take the lock {self.path}; "
                        f"delete it if no run is using {self.path.parent}")

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
