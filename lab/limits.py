"""Kernel limits of the machine the lab runs on, raised when they are too low for it."""
from __future__ import annotations

from pathlib import Path

INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_WANTED = 512  # each container's systemd holds ~5, all counted against root


def ensure_inotify_instances(path: Path = INOTIFY_INSTANCES, wanted: int = INOTIFY_WANTED) -> str:
    """Debian's default (128 inotify instances per user) runs out with two or three labs on one
    machine, and a host then fails to boot with "Too many open files": raise it (never lower
    it). Returns what changed, "" when nothing did."""
    try:
        current = int(path.read_text())
        if current >= wanted:
            return ""
        path.write_text(f"{wanted}\n")
    except (OSError, ValueError):
        return ""  # not ours to insist on: the hosts say so if it bites
    return f"fs.inotify.max_user_instances raised from {current} to {wanted}"
