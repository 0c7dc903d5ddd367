"""EVERY use of paramiko's private API in this project, in one place (R-GDPR-5, R-BKP-7).

paramiko (3.4-4.x) parses a certificate host key during key exchange and verifies the kex
signature with the certified key, but never checks the certificate itself and prefers plain host
keys. :class:`CertificateCheckingTransport` overrides exactly three Transport members:

* ``preferred_keys`` (property): offer ONLY ``*-cert-v01@openssh.com`` host-key algorithms;
* ``_parse_kex_init(m)``: refuse, saying why, a server that offers no host certificate;
* ``_verify_key(host_key, sig)``: after paramiko's own kex signature check (the server holds the
  certified key), check the certificate (:mod:`sshtrust.hostcert`) before the transport is usable,
  so no credential is ever offered to an unverified host.

It also reads ``host_key_type``, ``host_key`` and ``disabled_algorithms`` and relies on
``Transport._key_info`` mapping the certificate algorithms to key classes and on every kex
calling ``transport._verify_key``. tests/unit/sshtrust/test_sshtrust_paramiko.py asserts all of
this against the installed paramiko: an upgrade that changes any of it fails there, loudly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paramiko.message import Message
from paramiko.ssh_exception import SSHException
from paramiko.transport import Transport

from ._run import SshTrustError
from .certificate import Certificate
from .hostcert import HostCertificateError, HostTrust
from .keys import CERT_SUFFIX
from .openssh import CERT_HOST_KEY_ALGORITHMS

# The Transport members overridden or read here (checked by the unit test above).
OVERRIDDEN = {"preferred_keys": None, "_parse_kex_init": ("m",), "_verify_key": ("host_key", "sig")}
READ_ATTRIBUTES = ("host_key_type", "host_key", "disabled_algorithms")


class HostKeyRefused(HostCertificateError, SSHException):
    """Raised from paramiko's key exchange: also an ``SSHException`` for paramiko/Fabric users."""


def refused(exc: HostCertificateError) -> HostKeyRefused:
    return HostKeyRefused(exc.name, exc.reason, exc.certificate)


class CertificateCheckingTransport(Transport):
    """A paramiko client Transport that accepts only a valid host certificate for one name."""

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
            raise refused(exc) from exc
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
    """A ``transport_factory`` for ``SSHClient.connect`` (paramiko >= 3.2)."""

    def factory(sock: Any, **kwargs: Any) -> Transport:
        return CertificateCheckingTransport(
            sock, trust=trust, expected_name=expected_name, **kwargs
        )

    factory.checks_host_certificates = True  # type: ignore[attr-defined]
    return factory


def checks_host_certificates(factory: object) -> bool:
    """True for a factory made by :func:`transport_factory` (how a hardened gateway is known)."""
    return getattr(factory, "checks_host_certificates", False) is True
