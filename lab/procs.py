"""The lab's processes, found and stopped by PID, never by name.

Each long-running process the lab starts (apt-cacher-ng, one supervisor per host, which runs
systemd-nspawn) has a PID file in the state directory and the state directory in its argv. A PID
is trusted only when its command line still names that directory (PIDs get reused), and `down`
also scans /proc for such processes, so a crash between spawning a process and writing its PID
file cannot leave one behind.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

# Only these programs are ever killed by the /proc scan: a user's `less` on a lab log is not ours.
OWN_PROGRAMS = ("systemd-nspawn", "apt-cacher-ng", "python")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def read_pid(pidfile: Path, marker: str) -> int | None:
    """The PID in `pidfile` if that process is alive and its argv contains `marker`."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    if alive(pid) and marker in cmdline(pid):
        return pid
    return None


def spawn(argv: Sequence[str], pidfile: Path, log: Path,
          env: dict[str, str] | None = None) -> int:
    """Start a detached process (own session: a Ctrl-C in `up` does not reach it) and record it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, close_fds=True,
                                env={**os.environ, "LC_ALL": "C", **(env or {})})
    tmp = pidfile.with_suffix(".tmp")
    tmp.write_text(f"{proc.pid}\n")
    tmp.rename(pidfile)
    # Until the child has exec'd, its argv is ours and read_pid would not recognise it.
    deadline = time.monotonic() + 5
    while proc.poll() is None and cmdline(proc.pid) != " ".join(argv) + " " \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    return proc.pid


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return pids


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _root(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/root")
    except OSError:
        return ""


def lab_processes(state_dir: Path) -> list[int]:
    """Every live process that belongs to the lab in `state_dir`: the lab's own programs naming
    the directory in their argv, and every process whose root is inside it (the containers)."""
    marker = str(state_dir).rstrip("/") + "/"
    mine = _ancestors()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid in mine or not alive(pid):
            continue
        if _root(pid).startswith(marker) or (
                _comm(pid).startswith(OWN_PROGRAMS) and marker in cmdline(pid)):
            found.append(pid)
    return sorted(found)


def signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until the processes exit; return those still alive at the deadline."""
    left = list(pids)
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        _reap()
        left = [p for p in left if alive(p)]
        if left:
            time.sleep(0.1)
    return left


def _reap() -> None:
    """Collect our own exited children (only when `up` and `down` run in one process)."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def terminate(pids: Sequence[int], timeout: float) -> None:
    """SIGTERM, wait, then SIGKILL what is left."""
    signal_all(pids, signal.SIGTERM)
    left = wait_gone(pids, timeout)
    if left:
        signal_all(left, signal.SIGKILL)
        wait_gone(left, 5)
