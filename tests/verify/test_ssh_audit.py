"""External checker: ssh-audit with the committed policy passes (exit 0) on every host.

The bastion is audited on its public address; private hosts through an SSH local forward over
the bastion (the only path its sshd permits: PermitOpen <private ip>:22), as an admin would.
"""
from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

POLICY = Path(__file__).with_name("ssh-audit-policy.txt")


def _ssh_audit() -> str:
    exe = shutil.which("ssh-audit") or str(Path(sys.executable).with_name("ssh-audit"))
    if not Path(exe).exists():
        pytest.skip("ssh-audit is not installed (pip install ssh-audit)")
    return exe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _reach(host_entry: dict, inventory: dict, ssh_config: Path) -> Iterator[tuple[str, int]]:
    bastion = next(h for h in inventory["hosts"] if h["name"] == inventory["bastion"])
    if host_entry["name"] == bastion["name"]:
        yield bastion["public_ip"], 22
        return
    port = _free_port()
    forward = subprocess.Popen(
        ["ssh", "-F", str(ssh_config), "-N", "-o", "ExitOnForwardFailure=yes",
         "-L", f"127.0.0.1:{port}:{host_entry['private_ip']}:22", bastion["name"]],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if forward.poll() is not None:
                raise AssertionError(f"forward through the bastion failed: "
                                     f"{forward.stderr.read().decode()[-500:]}")
            time.sleep(0.2)
        yield "127.0.0.1", port
    finally:
        forward.terminate()
        forward.wait(10)


def test_ssh_audit_policy_passes(host_entry, inventory, pytestconfig):
    lab = pytestconfig.getoption("--lab-state")
    ssh_config = Path(pytestconfig.getoption("ssh_config") or Path(lab) / "ssh_config")
    with _reach(host_entry, inventory, ssh_config) as (address, port):
        done = subprocess.run([_ssh_audit(), "-P", str(POLICY), "--skip-rate-test",
                               "-p", str(port), address],
                              capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
