"""One run at a time per site: an fcntl lock on a file (issue 6: two runs never overlap).

flock, not a PID file: the kernel releases it when the process dies, however it dies, so a
crashed run never blocks the next night's. The holder's PID and start time are written into
the file only as information for the refusal message.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path


class LockHeld(RuntimeError):
    """Another run holds the lock; its message says who, from the lock file."""


@contextmanager
def exclusive(path: str | Path, what: str = "backup", wait: float = 0) -> Iterator[None]:
    """Hold an exclusive lock on `path` for the block; raise LockHeld if it is still taken
    after `wait` seconds (0: at once)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            raise LockHeld(f"another {what} run holds {path} ({holder}); not starting") from None
        os.ftruncate(fd, 0)
        started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.pwrite(fd, f"pid {os.getpid()} since {started}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
