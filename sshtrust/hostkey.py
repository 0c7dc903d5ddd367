"""Host-certificate verification for paramiko and Fabric (R-GDPR-5, R-BKP-7).

Fabric accepts any host key (``AutoAddPolicy``) and paramiko never checks a host certificate.
This module (public API only) wires :mod:`sshtrust._paramiko` (the one module that overrides
paramiko's private API: a Transport that negotiates only certificate host keys and checks the
certificate during key exchange) into Fabric:

* :class:`HostCertificatePolicy` replaces ``AutoAddPolicy`` (defence in depth);
* :func:`make_connection` builds a Fabric ``Connection`` with both, optionally through a verified
  gateway (ProxyJump), authenticating with a private key + its user certificate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fabric import Config, Connection
from paramiko import MissingHostKeyPolicy, PKey, SSHClient
from paramiko.config import SSHConfig
from paramiko.ssh_exception import SSHException

from ._paramiko import (
    CertificateCheckingTransport,
    HostKeyRefused,
    checks_host_certificates,
    refused,
    transport_factory,
)
from ._run import SshTrustError
from .certificate import (
    Certificate,
    CertificateError,
    CertType,
    load_certificate,
    parse_certificate,
)
from .hostcert import HostCertificateError, HostTrust
from .openssh import CERT_HOST_KEY_ALGORITHMS

__all__ = [
    "CERT_HOST_KEY_ALGORITHMS",
    "CertificateCheckingTransport",
    "HostCertificateError",
    "HostCertificatePolicy",
    "HostKeyRefused",
    "HostTrust",
    "VerifiedConnection",
    "harden",
    "load_user_key",
    "make_connection",
    "transport_factory",
]

class HostCertificatePolicy(MissingHostKeyPolicy):
    """Replaces Fabric's AutoAddPolicy: accept only a host key the transport verified as a
    certificate (or, on a plain Transport, a certificate that passes the same checks now)."""

    def __init__(self, trust: HostTrust, expected_name: str) -> None:
        self.trust = trust
        self.expected_name = expected_name

    def missing_host_key(self, client: SSHClient, hostname: str, key: PKey) -> None:
        transport = client.get_transport()
        cert = getattr(transport, "host_certificate", None)
        if isinstance(transport, CertificateCheckingTransport) and cert is not None:
            if transport.expected_name != self.expected_name:
                raise HostKeyRefused(
                    self.expected_name, f"transport verified {transport.expected_name!r} instead"
                )
            return
        blob = key.public_blob.key_blob if key.public_blob is not None else key.asbytes()
        try:
            checked = self.trust.check(blob, self.expected_name)
        except HostCertificateError as exc:
            raise refused(exc) from exc
        if checked.public_key_blob != key.asbytes():
            raise HostKeyRefused(self.expected_name, "host key differs from the certified key")


def load_user_key(key_path: Path | str, cert_path: Path | str | None = None) -> PKey:
    """A private key with its user certificate attached (paramiko then offers the certificate).

    Refuses a missing certificate, a host certificate, or one that certifies another key: a plain
    key is useless against our sshd (R-GDPR-5) and offering it only leaks its fingerprint.
    """
    key_path = Path(key_path)
    cert_file = Path(cert_path) if cert_path is not None else Path(f"{key_path}-cert.pub")
    try:
        key = PKey.from_path(key_path)
    except (OSError, SSHException, ValueError) as exc:
        raise SshTrustError(f"cannot load private key {key_path}: {exc}") from exc
    if not cert_file.is_file():
        raise SshTrustError(f"user certificate {cert_file} for {key_path} is missing")
    try:
        cert = load_certificate(cert_file)
    except CertificateError as exc:
        raise SshTrustError(f"user certificate {cert_file}: {exc}") from exc
    if cert.cert_type is not CertType.USER:
        raise SshTrustError(f"{cert_file} is a host certificate, not a user certificate")
    if cert.public_key_blob != key.asbytes():
        raise SshTrustError(f"{cert_file} certifies another key than {key_path}")
    key.load_certificate(str(cert_file))
    return key


class VerifiedConnection(Connection):
    """A Fabric Connection whose host must present a valid host certificate for its name."""

    # Class attributes: invoke's DataProxy turns unknown attribute sets into config keys.
    host_trust: HostTrust | None = None
    expected_name: str | None = None

    @property
    def host_certificate(self) -> Certificate | None:
        """The verified certificate of the connected host (None before ``open()``)."""
        return getattr(self.transport, "host_certificate", None)


def harden(conn: Connection, trust: HostTrust, expected_name: str | None = None) -> Connection:
    """Make an existing Fabric Connection verify host certificates (before it is opened).

    Refuses a gateway Connection that is not itself hardened: credentials for the target would
    travel through, and be shown to, an unverified bastion.
    """
    if conn.is_connected:
        raise SshTrustError(f"harden() must run before {conn.host} is connected")
    gateway = conn.gateway
    if isinstance(gateway, Connection) and not _is_hardened(gateway):
        raise SshTrustError(f"gateway {gateway.host} does not verify host certificates")
    name = expected_name or conn.host
    conn.connect_kwargs = {
        **conn.connect_kwargs,
        "transport_factory": transport_factory(trust, name),
    }
    conn.client.set_missing_host_key_policy(HostCertificatePolicy(trust, name))
    if isinstance(conn, VerifiedConnection):
        conn.host_trust = trust
        conn.expected_name = name
    return conn


def _is_hardened(conn: Connection) -> bool:
    return checks_host_certificates((conn.connect_kwargs or {}).get("transport_factory"))


def make_connection(
    host: str,
    user: str,
    port: int = 22,
    *,
    host_ca_pub: Path | str | list[Path | str] | None = None,
    krl: Path | str | None = None,
    expected_name: str | None = None,
    user_key: Path | str | None = None,
    user_cert: Path | str | None = None,
    gateway: Connection | None = None,
    trust: HostTrust | None = None,
    connect_timeout: int = 15,
    config: Config | None = None,
) -> VerifiedConnection:
    """A Fabric Connection to ``host`` that trusts only a host certificate from the host CA.

    ``expected_name`` is the principal the certificate must carry (default: ``host``); use it
    when connecting by address. ``gateway`` must come from make_connection too (ProxyJump: the
    bastion's certificate is checked the same way). ``user_key`` + ``user_cert`` (default
    ``<user_key>-cert.pub``) authenticate; agent and ~/.ssh keys are never used. By default no
    ssh_config is read, so a ``ProxyJump``/``HostName`` there cannot bypass these checks.
    """
    if trust is None:
        if host_ca_pub is None:
            raise SshTrustError("make_connection needs host_ca_pub (or trust)")
        trust = HostTrust.from_files(host_ca_pub, krl)
    if gateway is not None and not (isinstance(gateway, Connection) and _is_hardened(gateway)):
        raise SshTrustError(f"gateway for {host} must be a connection from make_connection()")
    connect_kwargs: dict[str, Any] = {"look_for_keys": False, "allow_agent": False}
    if user_key is not None:
        connect_kwargs["pkey"] = load_user_key(user_key, user_cert)
    conn = VerifiedConnection(
        host,
        user=user,
        port=port,
        # False, not None: None lets Fabric build an unverified gateway from ssh_config.
        gateway=gateway if gateway is not None else False,
        connect_kwargs=connect_kwargs,
        connect_timeout=connect_timeout,
        config=config if config is not None else quiet_config(),
    )
    harden(conn, trust, expected_name or host)
    return conn


def parse_host_key(key: PKey) -> Certificate | None:
    """The certificate behind a paramiko host key object, if it is one (for logs/audit)."""
    if key.public_blob is None:
        return None
    return parse_certificate(key.public_blob.key_blob)


def quiet_config() -> Config:
    """A Fabric config that reads no ssh_config and never forwards this process's stdin.

    Tasks run unattended (CI, cron, pytest's captured output): a remote command that waits
    for input must fail, not read the caller's terminal or raise inside Fabric's threads.
    """
    return Config(ssh_config=SSHConfig(), overrides={"run": {"in_stream": False},
                                                     "sudo": {"in_stream": False}})
