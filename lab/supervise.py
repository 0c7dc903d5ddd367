"""`python -m lab.supervise HOST_DIR -- NSPAWN_ARGV...`: keep one lab host running.

systemd-nspawn exits with 133 when the container reboots (`systemctl reboot` inside); without
systemd on the machine nothing would start it again, so this small parent does. SIGTERM (from
`lab down`) is passed on to nspawn, which asks the container's systemd for an orderly
poweroff (SIGRTMIN+3), and then no restart happens.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lab import cgroups

REBOOT = 133


def main(argv: list[str]) -> int:
    """argv: HOST_DIR MACHINE -- NSPAWN_ARGV..."""
    host_dir = Path(argv[0])
    cgroups.join(argv[1])
    nspawn = argv[argv.index("--") + 1:]
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    rc = 0
    while not stopping:
        started = time.monotonic()
        child = subprocess.Popen(nspawn, stdin=subprocess.DEVNULL)
        (host_dir / "nspawn.pid").write_text(f"{child.pid}\n")
        if stopping:  # SIGTERM arrived between the loop test and Popen
            child.send_signal(signal.SIGTERM)
        while True:
            try:
                rc = child.wait()
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for clarity
                continue
        (host_dir / "nspawn.pid").unlink(missing_ok=True)
        print(f"lab.supervise: nspawn exited {rc}", flush=True)
        if rc != REBOOT:
            break
        if time.monotonic() - started < 2:
            time.sleep(1)  # a container that reboots in a loop must not spin the CPU
    return rc


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main(sys.argv[1:]))
