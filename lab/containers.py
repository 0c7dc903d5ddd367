"""One lab host: an overlayfs root above the base image, booted by systemd-nspawn in its own
network namespace, kept running by lab.supervise.

Layout of a host directory (state/hosts/<name>/): upper/ and work/ (the host's own changes),
root/ (the overlay mount), the host key and certificate, created (marker written once the
host's first boot finished: without it the host is half-made and is rebuilt), and the PID files
and console log of its supervisor.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

from lab import cgroups, procs
from localcmd import run

NSPAWN_PROPAGATE = Path("/run/systemd/nspawn/propagate")
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def mounted(path: Path) -> bool:
    target = str(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


class Container:
    def __init__(self, state_dir: Path, name: str, machine: str, netns: str) -> None:
        self.name = name
        self.machine = machine
        self.netns = netns
        self.dir = state_dir / "hosts" / name

    # -- paths -------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def created_marker(self) -> Path:
        return self.dir / "created"

    @property
    def host_key(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    def exists(self) -> bool:
        return self.created_marker.exists()

    # -- filesystem --------------------------------------------------------------------------
    def mount(self, image: Path) -> bool:
        """Mount the overlay (idempotent); True when it was not mounted."""
        if mounted(self.root):
            return False
        for sub in ("upper", "work", "root"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        run(["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={image},upperdir={self.dir / 'upper'},workdir={self.dir / 'work'}",
             str(self.root)])
        return True

    def unmount(self) -> None:
        if mounted(self.root):
            if run(["umount", str(self.root)], check=False).returncode != 0:
                run(["umount", "-l", str(self.root)], check=False)

    def wipe(self) -> None:
        """Delete the host's files (call only once it is stopped and unmounted)."""
        if mounted(self.root):
            raise RuntimeError(f"{self.root} is still mounted; not deleting {self.dir}")
        shutil.rmtree(self.dir, ignore_errors=True)
        try:
            (NSPAWN_PROPAGATE / self.machine).rmdir()  # nspawn leaves this empty dir behind
        except OSError:
            pass

    def write_file(self, path: str, content: str, mode: int, owner: str = "root:root") -> None:
        """Write a file into the host's root the way cloud-init's write_files does."""
        rel = PurePosixPath(path)
        if not rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"bad path for host {self.name}: {path}")
        target = self.root / rel.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.lab-tmp")
        tmp.write_text(content)
        os.chmod(tmp, mode)
        user, _, group = owner.partition(":")
        os.chown(tmp, self._id("passwd", user), self._id("group", group or user))
        tmp.rename(target)

    def _id(self, table: str, name: str) -> int:
        if name.isdigit():
            return int(name)
        for line in (self.root / "etc" / table).read_text().splitlines():
            fields = line.split(":")
            if fields[0] == name:
                return int(fields[2])
        raise KeyError(f"host {self.name}: no {table} entry {name!r}")

    # -- processes ---------------------------------------------------------------------------
    @property
    def _marker(self) -> str:
        return str(self.dir) + "/"

    def supervisor_pid(self) -> int | None:
        return procs.read_pid(self.dir / "supervisor.pid", self._marker)

    def nspawn_pid(self) -> int | None:
        return procs.read_pid(self.dir / "nspawn.pid", str(self.root))

    def init_pid(self) -> int | None:
        """The container's PID 1 (systemd) as seen from the machine."""
        nspawn = self.nspawn_pid()
        if nspawn is None:
            return None
        try:
            children = Path(f"/proc/{nspawn}/task/{nspawn}/children").read_text().split()
        except OSError:
            return None
        for child in map(int, children):
            try:
                status = Path(f"/proc/{child}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("NSpid:") and line.split()[-1] == "1":
                    return child
        return None

    def nspawn_argv(self) -> list[str]:
        # Flags found by trying (DESIGN.md): CAP_NET_ADMIN for nftables, /dev/fuse for gocryptfs,
        # no registration with machined (no systemd on the machine), the lab's own resolv.conf.
        return [
            "systemd-nspawn", "--boot", "--quiet",
            f"--directory={self.root}", f"--machine={self.machine}", f"--hostname={self.name}",
            f"--network-namespace-path=/run/netns/{self.netns}",
            "--capability=CAP_NET_ADMIN,CAP_IPC_LOCK", "--bind=/dev/fuse",
            "--register=no", "--keep-unit", "--console=passive", "--resolv-conf=off",
            "--timezone=off", "--link-journal=no",
        ]

    def start(self) -> bool:
        """Start the supervisor (and so the container) unless it runs; True when started."""
        if self.supervisor_pid() is not None:
            return False
        argv = [sys.executable, "-m", "lab.supervise", self._marker, self.machine, "--",
                *self.nspawn_argv()]
        # A pure cgroup2 tree inside (systemd 257 has all but dropped cgroup v1), under the
        # host's own cgroup (lab/cgroups.py); /proc/sys/net writable for net.* sysctls.
        env = {"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1",
               "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network",
               "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        procs.spawn(argv, self.dir / "supervisor.pid", self.console_log, env=env)
        return True

    def wait_booted(self, timeout: float = 90) -> str:
        """Wait until systemd inside finished booting; return `systemctl is-system-running`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.supervisor_pid() is None:
                raise RuntimeError(f"host {self.name} stopped while booting; see "
                                   f"{self.console_log}:\n{self._log_tail()}")
            if self.init_pid() is not None:
                left = max(1.0, deadline - time.monotonic())
                proc = self.exec(["systemctl", "is-system-running", "--wait"], timeout=left,
                                 check=False)
                state = proc.stdout.strip()
                if state in ("running", "degraded"):
                    return state
            time.sleep(0.2)
        raise RuntimeError(f"host {self.name} did not finish booting in {timeout:.0f}s")

    def _log_tail(self) -> str:
        try:
            return self.console_log.read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def exec(self, argv: list[str], *, timeout: float = 120, check: bool = True,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command as root inside the running host (the lab's back door, used for
        cloud-init's runcmd part; tests and roles go through SSH)."""
        pid = self.init_pid()
        if pid is None:
            raise RuntimeError(f"host {self.name} is not running")
        return run(["nsenter", f"--target={pid}", "--all", "--", "env", "-i",
                    f"PATH={CONTAINER_PATH}", "HOME=/root", "LANG=C.UTF-8", *argv],
                   timeout=timeout, check=check, input=input)

    def stop(self, timeout: float = 30) -> None:
        """Orderly poweroff: SIGTERM to the supervisor, passed to nspawn, which asks systemd
        inside to halt. Processes still there at the deadline are killed."""
        pids = [p for p in (self.supervisor_pid(), self.nspawn_pid()) if p is not None]
        sup = self.supervisor_pid()
        if sup is not None:
            procs.signal_all([sup], 15)
        elif pids:
            procs.signal_all(pids, 15)
        left = procs.wait_gone(pids, timeout)
        if left:
            procs.signal_all(left, 9)
            procs.wait_gone(left, 5)
        stray = [p for p in procs.lab_processes(self.dir) if procs.alive(p)]
        if stray:
            cgroups.kill(self.machine)
            procs.signal_all(stray, 9)
            procs.wait_gone(stray, 5)
        for f in ("supervisor.pid", "nspawn.pid"):
            (self.dir / f).unlink(missing_ok=True)
        cgroups.remove(self.machine)
