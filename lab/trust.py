"""The lab's SSH trust: its own user CA and host CA, host keys, and the runner's certificate.

The lab plays the admin's part as well as cloud-init's: it keeps both CA keys in its state
directory (0600, in a 0700 directory), signs each host key (fingerprint pinned at generation),
and signs a short-lived user certificate for whoever runs the lab.
"""
from __future__ import annotations

import getpass
import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine import tls_ca
from localcmd import run
from sshtrust.ca import create_ca, init_krl, make_key_id, sign_host_key, sign_user_key
from sshtrust.certificate import load_certificate
from sshtrust.keys import fingerprint

# ProxyJump through the bastion opens a direct-tcpip channel: the lab certificate must allow
# port forwarding, or every private host is unreachable. Nothing else beyond a terminal.
USER_CERT_OPTIONS = ("permit-pty", "permit-port-forwarding")
RENEW_BEFORE = timedelta(minutes=30)


class LabTrust:
    def __init__(self, state_dir: Path, prefix: str) -> None:
        self.dir = state_dir / "ca"
        self.user_dir = state_dir / "user"
        self.prefix = prefix

    @property
    def user_ca(self) -> Path:
        return self.dir / "user_ca"

    @property
    def host_ca(self) -> Path:
        return self.dir / "host_ca"

    @property
    def host_ca_pub(self) -> Path:
        return self.dir / "host_ca.pub"

    @property
    def user_key(self) -> Path:
        return self.user_dir / "id_ed25519"

    @property
    def user_cert(self) -> Path:
        return self.user_dir / "id_ed25519-cert.pub"

    def ensure_cas(self) -> bool:
        """Create both CAs unless they exist (kept across `down`/`up`); True if created."""
        created = not (self.user_ca.exists() and self.host_ca.exists())
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        create_ca(self.user_ca, f"{self.prefix}-lab-user-ca")
        create_ca(self.host_ca, f"{self.prefix}-lab-host-ca")
        # Both KRLs exist from the start, as `fab ca.create` makes them: every deploy then
        # pushes them and compares them (a missing one would only be created, never updated).
        for ca_key in (self.user_ca, self.host_ca):
            init_krl(ca_key.with_suffix(".krl"), ca_key.with_name(ca_key.name + ".pub"))
        # The internal X.509 CA of the proxy -> web hop, as `fab ca.create` makes it.
        tls_ca.create(self.dir, f"{self.prefix}-lab")
        return created

    def ca_public(self, which: str) -> str:
        return (self.dir / f"{which}.pub").read_text().strip()

    # -- hosts ---------------------------------------------------------------------------------
    def ensure_host_key(self, key: Path, name: str, principals: list[str]) -> str:
        """Generate the host's key (unless it exists) and its certificate; return the key's
        fingerprint (the inventory's pin)."""
        pub = key.with_name(key.name + ".pub")
        if not key.exists() or not pub.exists():
            key.unlink(missing_ok=True)
            pub.unlink(missing_ok=True)
            key.parent.mkdir(parents=True, exist_ok=True)
            generate_key(key, f"root@{name}")
        fp = fingerprint(pub)
        cert = key.with_name(key.name + "-cert.pub")
        if not cert.exists() or load_certificate(cert).principals != tuple(principals):
            sign_host_key(self.host_ca, pub, f"{self.prefix}-lab-host-{name}", principals,
                          expected_fingerprint=fp)
        return fp

    # -- the person running the lab -----------------------------------------------------------
    def ensure_user_cert(self, principals: list[str], ttl: timedelta) -> bool:
        """A user certificate valid for at least RENEW_BEFORE more; True if (re)signed."""
        if not self.user_key.exists():
            self.user_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            generate_key(self.user_key, f"{getpass.getuser()}@{socket.gethostname()}-lab")
        if self.user_cert.exists():
            cert = load_certificate(self.user_cert)
            left = cert.valid_before - datetime.now(UTC).timestamp()
            if left > RENEW_BEFORE.total_seconds() and cert.principals == tuple(principals):
                return False
        key_id = make_key_id(f"{getpass.getuser()}@{socket.gethostname()}")
        sign_user_key(self.user_ca, self.user_key.with_name(self.user_key.name + ".pub"), key_id,
                      principals, ttl=ttl, options=USER_CERT_OPTIONS)
        return True


def generate_key(path: Path, comment: str) -> None:
    # -N '' : an unencrypted key (the lab's own throwaway identity; its directory is 0700).
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    os.chmod(path, 0o600)
