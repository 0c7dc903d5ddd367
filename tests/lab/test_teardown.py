"""`down` leaves nothing of the lab on the machine, even after an `up` that crashed or was
interrupted half-way. Checked independently of the lab's own bookkeeping: ip, /proc, ss.
(conftest runs this file last: it takes the session's lab down.)"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import cgroups
from lab.config import REPO_ROOT
from lab.testing import LabSession

pytestmark = pytest.mark.lab


def _netns(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(prefix + "-")]


def _links(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
    return [n for n in names if n.startswith(prefix)]


def _mounts(state_dir: Path) -> list[str]:
    return [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1].startswith(str(state_dir) + "/")]


def _processes(state_dir: Path) -> list[str]:
    """Processes naming the state directory (nspawn, supervisors, apt-cacher-ng) or living in
    a root under it (anything inside a container)."""
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            root = os.readlink(entry / "root")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (str(state_dir) + "/" in args or root.startswith(str(state_dir))):
            found.append(f"{entry.name}: {args[:120]}")
    return found


def _listening(address: str, port: int) -> bool:
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                         text=True).stdout
    return f"{address}:{port}" in out


def _assert_nothing_left(lab: LabSession) -> None:
    cfg = lab.lab.cfg
    assert _netns(cfg.prefix) == [], "network namespaces left"
    assert _links(cfg.prefix) == [], "bridges or veth ports left"
    assert _mounts(cfg.state_dir) == [], "mounts left"
    assert _processes(cfg.state_dir) == [], "processes left (containers, supervisors, proxy)"
    assert not _listening(str(lab.lab.apt.address), cfg.apt_proxy_port), "apt proxy listening"
    assert cgroups.lab_cgroups(cfg.prefix) == [], "cgroups left"
    assert not (cfg.state_dir / "hosts").exists() or not any((cfg.state_dir / "hosts").iterdir())
    assert lab.lab.leftovers().empty()


def test_down_removes_every_container_mount_namespace_bridge_and_the_apt_proxy(
        lab: LabSession) -> None:
    assert _processes(lab.lab.cfg.state_dir), "the lab should be up before this test"
    left = lab.down()
    assert left.empty(), str(left)
    _assert_nothing_left(lab)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "crash"])
def test_down_cleans_up_after_an_up_stopped_half_way(
        lab: LabSession, how: signal.Signals) -> None:
    lab.down()
    cfg = lab.lab.cfg
    up = subprocess.Popen([sys.executable, "-m", "lab", "--prefix", cfg.prefix, "--state-dir",
                           str(cfg.state_dir), "up"], cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # Half-way: some hosts booting, others not yet created.
        deadline = time.monotonic() + 120
        while len(list((cfg.state_dir / "hosts").glob("*/nspawn.pid"))) < 2:
            assert up.poll() is None and time.monotonic() < deadline, "up finished too early"
            time.sleep(0.05)
        os.killpg(up.pid, how)  # Ctrl-C reaches the whole foreground process group
        up.wait(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    assert _processes(cfg.state_dir), "the interrupted up should have left hosts running"
    down = subprocess.run([sys.executable, "-m", "lab", "--prefix", cfg.prefix, "down"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stderr
    lab.is_down = True
    _assert_nothing_left(lab)
