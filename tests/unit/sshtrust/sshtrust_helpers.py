"""Test helpers for sshtrust: a PKI made with real ssh-keygen, and real sshd daemons."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sshtrust import ca

SSHD = "/usr/sbin/sshd"
ADMIN_PRINCIPAL = "sysadmin"  # sshd maps it to root through AuthorizedPrincipalsFile
HOST_NAME = "web-a"


def keygen(path: Path, kind: str = "ed25519") -> Path:
    """A fresh unencrypted key pair; returns the .pub path."""
    bits = ["-b", "3072"] if kind == "rsa" else []
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *bits, "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return path.with_name(path.name + ".pub")


def sign_raw(ca_key: Path, pub: Path, *args: str) -> Path:
    """ssh-keygen -s with arbitrary options: for certificates our CA API refuses to make."""
    subprocess.run(
        ["ssh-keygen", "-q", "-s", str(ca_key), *args, str(pub)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return pub.with_name(pub.name[: -len(".pub")] + "-cert.pub")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Pki:
    root: Path
    host_ca: Path
    user_ca: Path
    rogue_ca: Path
    host_krl: Path
    user_krl: Path

    @classmethod
    def create(cls, root: Path) -> Pki:
        cas = root / "ca"
        host_ca = ca.create_ca(cas / "host_ca", "test host CA")
        user_ca = ca.create_ca(cas / "user_ca", "test user CA")
        rogue_ca = ca.create_ca(cas / "rogue_ca", "rogue CA")
        host_krl = ca.init_krl(root / "host.krl", pub(host_ca))
        user_krl = ca.init_krl(root / "user.krl", pub(user_ca))
        return cls(root, host_ca, user_ca, rogue_ca, host_krl, user_krl)

    def user_key(
        self,
        name: str,
        *,
        principals: Sequence[str] = (ADMIN_PRINCIPAL,),
        ca_key: Path | None = None,
        options: Sequence[str] = (),
        raw: Sequence[str] | None = None,
    ) -> Path:
        """A user key in its own dir with a cert (unless ``ca_key`` is False-y and raw None)."""
        d = self.root / "users" / name
        d.mkdir(parents=True, exist_ok=False)
        pub_path = keygen(d / "id_ed25519")
        if raw is not None:
            sign_raw(ca_key or self.user_ca, pub_path, *raw)
        else:
            ca.sign_user_key(
                ca_key or self.user_ca,
                pub_path,
                ca.make_key_id(f"{name}@test"),
                principals,
                options=options,
            )
        return d / "id_ed25519"


def pub(key: Path) -> Path:
    return key.with_name(key.name + ".pub")


@dataclass
class Sshd:
    port: int
    directory: Path
    proc: subprocess.Popen[bytes]
    host_pub: Path
    host_cert: Path | None

    def log(self) -> str:
        path = self.directory / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class SshdFactory:
    root: Path
    pki: Pki
    daemons: list[Sshd] = field(default_factory=list)

    def __post_init__(self) -> None:
        if os.geteuid() != 0:
            pytest.skip("sshd fixtures need root (sshd must run as root to log users in)")
        if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
            pytest.skip(f"{SSHD} or ssh-keygen not installed (apt-get install openssh-server)")
        # sshd refuses to start without its privilege separation directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    def start(
        self,
        host_cert: str = "good",
        *,
        key_type: str = "ed25519",
        principals: Sequence[str] = (HOST_NAME, "127.0.0.1"),
        revoked_keys: Path | None | str = "default",
    ) -> Sshd:
        """host_cert: good | rogue | expired | none (plain host key only)."""
        d = self.root / f"sshd{len(self.daemons)}"
        d.mkdir()
        host_pub = keygen(d / f"ssh_host_{key_type}_key", key_type)
        cert: Path | None = None
        key_id = ca.make_key_id(f"{principals[0]}-{host_cert}")
        if host_cert == "good":
            cert = ca.sign_host_key(
                self.pki.host_ca,
                host_pub,
                key_id,
                principals,
                expected_fingerprint=ca.fingerprint(host_pub),
            )
        elif host_cert == "rogue":
            cert = ca.sign_host_key(self.pki.rogue_ca, host_pub, key_id, principals)
        elif host_cert == "expired":
            cert = sign_raw(
                self.pki.host_ca,
                host_pub,
                "-h",
                "-I",
                key_id,
                "-n",
                ",".join(principals),
                "-V",
                "20200101:20200201",
                "-z",
                "900001",
            )
        elif host_cert != "none":
            raise ValueError(host_cert)
        principals_dir = d / "principals"
        principals_dir.mkdir()
        (principals_dir / "root").write_text(f"{ADMIN_PRINCIPAL}\n")
        krl = self.pki.user_krl if revoked_keys == "default" else revoked_keys
        port = free_port()
        lines = [
            f"Port {port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {d / f'ssh_host_{key_type}_key'}",
            *([f"HostCertificate {cert}"] if cert else []),
            f"TrustedUserCAKeys {pub(self.pki.user_ca)}",
            f"AuthorizedPrincipalsFile {principals_dir}/%u",
            "AuthorizedKeysFile none",
            *([f"RevokedKeys {krl}"] if krl else []),
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password",
            "AllowTcpForwarding yes",
            "UsePAM no",
            # The temp dir sits under world-writable /tmp; the real config keeps StrictModes yes.
            "StrictModes no",
            f"PidFile {d / 'sshd.pid'}",
            "LogLevel VERBOSE",
        ]
        config = d / "sshd_config"
        config.write_text("\n".join(lines) + "\n")
        subprocess.run([SSHD, "-t", "-f", str(config)], check=True)
        log = open(d / "sshd.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
        log.close()
        daemon = Sshd(port, d, proc, host_pub, cert)
        self.daemons.append(daemon)
        self._wait_ready(daemon)
        return daemon

    @staticmethod
    def _wait_ready(daemon: Sshd) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if daemon.proc.poll() is not None:
                raise RuntimeError(f"sshd exited {daemon.proc.returncode}: {daemon.log()}")
            try:
                with socket.create_connection(("127.0.0.1", daemon.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-2.0-"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"sshd on port {daemon.port} not ready: {daemon.log()}")

    def stop_all(self) -> None:
        for daemon in self.daemons:
            if daemon.proc.poll() is None:
                daemon.proc.terminate()
                try:
                    daemon.proc.wait(5)
                except subprocess.TimeoutExpired:
                    daemon.proc.kill()
                    daemon.proc.wait()
