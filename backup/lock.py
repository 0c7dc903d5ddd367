"""One run at a time per site: an fcntl lock on a file (issue 6: two runs never overlap).

flock, not a PID file: the kernel releases it when the process dies, however it dies, so a
crashed run never blocks the next night's. The holder's PID and start time are written into
the file only as information for the refusal message.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path


class LockHeld(RuntimeError):
    """Another run holds the lock; its message says who, from the lock file."""


@contextmanager
def exclusive(path: str | Path, what: str = "backup") -> Iterator[None]:
    """Hold an exclusive, non-blocking lock on `path` for the block; raise LockHeld if taken."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            raise LockHeld(f"another {what} run holds {path} ({holder}); not starting") from None
        os.ftruncate(fd, 0)
        started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.pwrite(fd, f"pid {os.getpid()} since {started}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
