"""Files for OpenSSH clients (testinfra's ``ssh://`` backend, admins' own ``ssh``): a
``@cert-authority`` known_hosts line and strict ssh_config blocks. OpenSSH checks host
certificates natively; these settings make it accept nothing else (R-GDPR-5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._run import SshTrustError
from .keys import read_pubkey

# OpenSSH names, certificate algorithms only: a host can never fall back to a plain key.
CERT_HOST_KEY_ALGORITHMS = (
    "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
)


def known_hosts_line(ca_pub: Path, patterns: Sequence[str] = ("*",)) -> str:
    """``@cert-authority PATTERNS KEY``: trust ``ca_pub`` to certify hosts matching patterns.

    paramiko cannot read this line (use :mod:`sshtrust.hostkey` there); OpenSSH can.
    """
    key = read_pubkey(ca_pub)
    if key.is_certificate:
        raise SshTrustError(f"{ca_pub} is a certificate, not a CA key")
    if not patterns or any(not p or any(c in p for c in " ,\t\n") for p in patterns):
        raise SshTrustError(f"invalid host patterns {list(patterns)!r}")
    plain = key.line().split()[:2]
    return f"@cert-authority {','.join(patterns)} {' '.join(plain)}\n"


def ssh_config_block(
    alias: str,
    *,
    hostname: str,
    user: str,
    known_hosts: Path,
    identity_file: Path,
    certificate_file: Path | None = None,
    port: int = 22,
    revoked_host_keys: Path | None = None,
    proxy_jump: str | None = None,
) -> str:
    """A ``Host`` block that authenticates by certificate only and verifies the host
    certificate for ``alias`` (the principal the host certificate must carry)."""
    cert = certificate_file or Path(f"{identity_file}-cert.pub")
    lines = [
        f"Host {alias}",
        f"  HostName {hostname}",
        f"  Port {port}",
        f"  User {user}",
        # The name looked up in known_hosts AND required among the certificate's principals,
        # whatever address HostName/Port point at.
        f"  HostKeyAlias {alias}",
        f"  UserKnownHostsFile {known_hosts}",
        "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes",
        "  UpdateHostKeys no",
        "  CheckHostIP no",
        f"  HostKeyAlgorithms {','.join(CERT_HOST_KEY_ALGORITHMS)}",
        f"  IdentityFile {identity_file}",
        f"  CertificateFile {cert}",
        "  IdentitiesOnly yes",
        "  IdentityAgent none",
        "  PreferredAuthentications publickey",
        "  PasswordAuthentication no",
        "  KbdInteractiveAuthentication no",
        "  BatchMode yes",
        "  ForwardAgent no",
    ]
    if revoked_host_keys is not None:
        lines.append(f"  RevokedHostKeys {revoked_host_keys}")
    if proxy_jump is not None:
        lines.append(f"  ProxyJump {proxy_jump}")
    return "\n".join(lines) + "\n"


def inventory_ssh_config(doc: Mapping[str, Any], *, known_hosts: Path, user_key: Path,
                         user_cert: Path, header: str = "",
                         revoked_host_keys: Path | None = None) -> str:
    """An ssh_config reaching every host of an inventory document by its name, as on OVH: the
    bastion on its public address, every other host on its private one through the bastion
    (ProxyJump). One code path for the lab's files and `fab verify`'s (any environment)."""
    bastion = doc["bastion"]
    blocks = [header] if header else []
    for h in doc["hosts"]:
        direct = h["name"] == bastion
        blocks.append(ssh_config_block(
            h["name"], hostname=str(h["public_ip"] if direct else h["private_ip"]),
            user=doc["ssh"]["login_user"], known_hosts=known_hosts, identity_file=user_key,
            certificate_file=user_cert, revoked_host_keys=revoked_host_keys,
            proxy_jump=None if direct else bastion))
    blocks.append("Host *\n  ConnectTimeout 10\n  ServerAliveInterval 15\n  LogLevel ERROR\n")
    return "\n".join(blocks)
