"""Host-certificate verification for paramiko and Fabric (R-GDPR-5, R-BKP-7).

paramiko (3.x/4.x) can parse a certificate host key during key exchange and checks the kex
signature with the certified key, but never checks the certificate itself, prefers plain host
keys, and Fabric accepts any host key (``AutoAddPolicy``). This module:

* :class:`CertificateCheckingTransport` offers ONLY ``*-cert-v01@openssh.com`` host-key
  algorithms, lets paramiko verify the kex signature (proof the server holds the certified key),
  then checks the certificate (:mod:`sshtrust.hostcert`) before the transport is usable, so no
  credential is ever offered to an unverified host;
* :class:`HostCertificatePolicy` replaces ``AutoAddPolicy`` (defence in depth);
* :func:`make_connection` builds a Fabric ``Connection`` with both, optionally through a verified
  gateway (ProxyJump), authenticating with a private key + its user certificate.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from fabric import Config, Connection
from paramiko import ECDSAKey, Ed25519Key, MissingHostKeyPolicy, PKey, RSAKey, SSHClient
from paramiko.config import SSHConfig
from paramiko.message import Message
from paramiko.ssh_exception import SSHException
from paramiko.transport import Transport

from ._run import SshTrustError
from .certificate import (
    Certificate,
    CertificateError,
    CertType,
    load_certificate,
    parse_certificate,
)
from .hostcert import HostCertificateError, HostTrust
from .keys import CERT_SUFFIX
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

# paramiko key class for each certificate host-key algorithm we offer (see openssh.py).
_KEY_CLASSES: dict[str, type[PKey]] = {
    "ssh-ed25519" + CERT_SUFFIX: Ed25519Key,
    "ecdsa-sha2-nistp256" + CERT_SUFFIX: ECDSAKey,
    "ecdsa-sha2-nistp384" + CERT_SUFFIX: ECDSAKey,
    "ecdsa-sha2-nistp521" + CERT_SUFFIX: ECDSAKey,
    "rsa-sha2-512" + CERT_SUFFIX: RSAKey,
    "rsa-sha2-256" + CERT_SUFFIX: RSAKey,
}


class HostKeyRefused(HostCertificateError, SSHException):
    """Raised from paramiko's key exchange: also an ``SSHException`` for paramiko/Fabric users."""


def _refused(exc: HostCertificateError) -> HostKeyRefused:
    return HostKeyRefused(exc.name, exc.reason, exc.certificate)


class CertificateCheckingTransport(Transport):
    """A paramiko client Transport that accepts only a valid host certificate for one name."""

    # paramiko 4.0 already maps these names; older 3.x may not: make sure they are there.
    _key_info: ClassVar[dict[str, type[PKey]]] = {**Transport._key_info, **_KEY_CLASSES}

    def __init__(self, sock: Any, *, trust: HostTrust, expected_name: str, **kwargs: Any) -> None:
        if not expected_name:
            raise SshTrustError("CertificateCheckingTransport needs the name it connects to")
        self.host_trust = trust
        self.expected_name = expected_name
        self.host_certificate: Certificate | None = None
        super().__init__(sock, **kwargs)

    @property
    def preferred_keys(self) -> tuple[str, ...]:  # type: ignore[override]
        """Only certificate algorithms, so a server offering both negotiates the certificate.

        paramiko's own property appends cert variants *after* the plain types (plain wins) and
        SSHClient rewrites ``_preferred_keys`` from known_hosts: overriding the property here
        makes both irrelevant. ``disabled_algorithms["keys"]`` still applies.
        """
        disabled = set(getattr(self, "disabled_algorithms", {}).get("keys", ()))
        return tuple(
            a
            for a in CERT_HOST_KEY_ALGORITHMS
            if a not in disabled and a[: -len(CERT_SUFFIX)] not in disabled
        )

    def _parse_kex_init(self, m: Message) -> None:
        """Turn paramiko's bare "no acceptable host key" into a refusal that says why."""
        offered = _offered_host_key_algorithms(m)
        if offered is not None and not set(offered) & set(self.preferred_keys):
            raise HostKeyRefused(
                self.expected_name,
                f"the server offers no host certificate (host key algorithms: {offered}); "
                "plain host keys are never trusted",
            )
        super()._parse_kex_init(m)

    def _verify_key(self, host_key: bytes, sig: bytes) -> None:
        name = self.expected_name
        algorithm = self.host_key_type or ""
        if algorithm not in CERT_HOST_KEY_ALGORITHMS:
            raise HostKeyRefused(name, f"negotiated host key algorithm {algorithm!r} is not a cert")
        # The kex signature must use the negotiated algorithm (paramiko does not check that:
        # a server could downgrade rsa-sha2-512 to ssh-rsa/SHA-1).
        sig_algorithm = Message(sig).get_text()
        if sig_algorithm != algorithm[: -len(CERT_SUFFIX)]:
            raise HostKeyRefused(
                name, f"kex signature uses {sig_algorithm!r}, negotiated {algorithm!r}"
            )
        # paramiko loads the key certified inside the cert and verifies the exchange hash
        # signature with it: the server proves it holds the private half of the certified key.
        super()._verify_key(host_key, sig)
        try:
            cert = self.host_trust.check(host_key, name)
        except HostCertificateError as exc:
            raise _refused(exc) from exc
        if self.host_key.asbytes() != cert.public_key_blob:
            raise HostKeyRefused(name, "kex key differs from the certified key", cert)
        previous = self.host_certificate
        if previous is not None and previous.public_key_blob != cert.public_key_blob:
            raise HostKeyRefused(name, "host key changed during re-key", cert)
        self.host_certificate = cert


def _offered_host_key_algorithms(m: Message) -> list[str] | None:
    """The server's host-key algorithm list from its KEXINIT (RFC 4253 §7.1), read from a copy
    so paramiko's own parse is untouched; None if it cannot be read (paramiko then decides)."""
    try:
        peek = Message(m.asbytes())
        peek.get_bytes(16)  # cookie
        peek.get_list()  # kex algorithms
        return list(peek.get_list())
    except Exception:  # noqa: BLE001 - a peek must never break the handshake
        return None


def transport_factory(trust: HostTrust, expected_name: str) -> Callable[..., Transport]:
    """A ``transport_factory`` for ``SSHClient.connect`` (paramiko >= 3.0)."""

    def factory(sock: Any, **kwargs: Any) -> Transport:
        return CertificateCheckingTransport(
            sock, trust=trust, expected_name=expected_name, **kwargs
        )

    return factory


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
            raise _refused(exc) from exc
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
    return isinstance(conn.client._policy, HostCertificatePolicy) and "transport_factory" in (
        conn.connect_kwargs or {}
    )


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
