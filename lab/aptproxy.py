"""apt-cacher-ng for the hosts, a child process bound only to the private bridge address.

Hosts have no route out; they fetch Debian packages through this proxy, which is the one thing
in the lab that reaches the Debian archive. Its cache stays in the state directory across
`down`/`up` (it is a cache: the second lab up installs packages without the network).
"""
from __future__ import annotations

import socket
import time
from ipaddress import IPv4Address
from pathlib import Path

from lab import procs

SUPPORT_DIR = Path("/usr/lib/apt-cacher-ng")
BINARY = "/usr/sbin/apt-cacher-ng"


class AptProxy:
    def __init__(self, state_dir: Path, address: IPv4Address, port: int, mirror: str) -> None:
        self.dir = state_dir / "aptproxy"
        self.address = address
        self.port = port
        self.mirror = mirror.rstrip("/") + "/"

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def pidfile(self) -> Path:
        return self.dir / "pid"

    @property
    def conf_dir(self) -> Path:
        return self.dir / "conf"

    def pid(self) -> int | None:
        return procs.read_pid(self.pidfile, str(self.conf_dir))

    def _config(self) -> str:
        return "\n".join([
            f"CacheDir: {self.dir / 'cache'}",
            f"LogDir: {self.dir / 'log'}",
            f"SupportDir: {SUPPORT_DIR}",
            f"Port: {self.port}",
            # Only the lab's private bridge: nothing else on the machine's networks may use it.
            f"BindAddress: {self.address}",
            # Only the remapped Debian archive: the proxy is not an open relay to the internet.
            "ForceManaged: 1",
            "Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian",
            # Security updates, from deb.debian.org too (security.debian.org is not reachable).
            "Remap-secdeb: security.debian.org security.debian.org/debian-security "
            "deb.debian.org/debian-security /debian-security ; file:backends_debian_security",
            "ExThreshold: 4",
            "ForeGround: 1",
            f"PidFile: {self.dir / 'acng.pid'}",
            f"SocketPath: {self.dir / 'socket'}",
            "ReportPage: acng-report.html",
            "",
        ])

    def ensure(self, timeout: float = 15) -> bool:
        """Start the proxy unless it already runs; True when it had to be started."""
        if self.pid() is not None and self.answers():
            return False
        self.stop()
        for sub in ("conf", "cache", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "acng.conf").write_text(self._config())
        # The package's default Debian backend list gives 503 here; name deb.debian.org.
        (self.conf_dir / "backends_debian").write_text(self.mirror + "\n")
        (self.conf_dir / "backends_debian_security").write_text(
            self.mirror.rstrip("/") + "-security/\n")
        procs.spawn([BINARY, "-c", str(self.conf_dir)], self.pidfile, self.dir / "daemon.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.answers():
                return True
            if self.pid() is None:
                break
            time.sleep(0.1)
        log = (self.dir / "daemon.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"apt-cacher-ng did not start on {self.url}: {log}")

    def answers(self) -> bool:
        try:
            with socket.create_connection((str(self.address), self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = 10) -> None:
        pid = self.pid()
        if pid is not None:
            procs.terminate([pid], timeout)
        self.pidfile.unlink(missing_ok=True)

    def apt_conf(self) -> str:
        """The lab's apt.conf.d file in every host (written at creation, never by the roles)."""
        return "\n".join([
            "// Written by the lab (lab/aptproxy.py): hosts reach Debian only through this proxy.",
            f'Acquire::http::Proxy "{self.url}";',
            'Acquire::https::Proxy "DIRECT";',
            'Acquire::http::Timeout "30";',
            'Acquire::Retries "3";',
            "",
        ])
