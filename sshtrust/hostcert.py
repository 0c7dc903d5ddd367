"""Decide whether a host certificate is acceptable: the checks OpenSSH's client makes for a
``@cert-authority`` known_hosts line, and a few stricter ones. No network, no paramiko.

R-GDPR-5 / R-BKP-7: an admin's or a backup job's credentials must only ever be offered to a host
that proved, with a certificate from the environment's host CA, that it is the host named.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import ca
from ._run import SshTrustError
from ._wire import WireError, blob_type
from .certificate import (
    Certificate,
    CertificateError,
    CertType,
    SignatureError,
    parse_certificate,
)
from .keys import CERT_SUFFIX, fingerprint_blob, read_pubkey

# Host certificates define no critical options; OpenSSH's client refuses any (sshconnect.c).
_ALLOWED_HOST_CRITICAL: frozenset[str] = frozenset()


class HostCertificateError(SshTrustError):
    """The host did not prove its identity with an acceptable certificate."""

    def __init__(self, name: str, reason: str, cert: Certificate | None = None) -> None:
        self.name = name
        self.reason = reason
        self.certificate = cert
        detail = f" [{cert.describe()}]" if cert is not None else ""
        super().__init__(f"host key of {name!r} refused: {reason}{detail}")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class HostTrust:
    """What a client trusts for one environment: its host CA key(s) and its host KRL.

    Several CA keys are allowed only to roll the CA over (old and new side by side).
    """

    ca_keys: tuple[bytes, ...]
    krl: Path | None = None
    clock: Callable[[], datetime] = field(default=_utcnow, compare=False)

    def __post_init__(self) -> None:
        if not self.ca_keys:
            raise SshTrustError("HostTrust needs at least one host CA public key")

    @classmethod
    def from_files(
        cls,
        host_ca_pub: Path | str | Iterable[Path | str],
        krl: Path | str | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> HostTrust:
        paths = [host_ca_pub] if isinstance(host_ca_pub, (str, Path)) else list(host_ca_pub)
        keys = []
        for p in paths:
            line = read_pubkey(Path(p))
            if line.is_certificate:
                raise SshTrustError(f"host CA {p} is a certificate; a CA key must be a plain key")
            keys.append(line.blob)
        return cls(tuple(keys), Path(krl) if krl is not None else None, clock)

    @property
    def ca_fingerprints(self) -> tuple[str, ...]:
        return tuple(fingerprint_blob(k) for k in self.ca_keys)

    def check(self, host_key_blob: bytes, name: str) -> Certificate:
        """Return the parsed certificate if ``host_key_blob`` is acceptable for ``name``."""
        return verify_host_certificate(
            host_key_blob, name, self.ca_keys, krl=self.krl, now=self.clock()
        )


def verify_host_certificate(
    host_key_blob: bytes,
    name: str,
    ca_keys: Sequence[bytes],
    *,
    krl: Path | None = None,
    now: datetime | None = None,
) -> Certificate:
    """Raise :class:`HostCertificateError` unless the blob is a host certificate signed by one of
    ``ca_keys``, valid at ``now``, naming ``name`` among its principals, and not revoked."""
    now = now or _utcnow()
    key_type = _blob_type(host_key_blob, name)
    if not key_type.endswith(CERT_SUFFIX):
        raise HostCertificateError(
            name,
            f"the host presented a plain {key_type} key ({fingerprint_blob(host_key_blob)}), "
            "not a certificate: plain host keys are never trusted",
        )
    try:
        cert = parse_certificate(host_key_blob)
    except CertificateError as exc:
        raise HostCertificateError(name, f"malformed certificate: {exc}") from exc

    if cert.cert_type is not CertType.HOST:
        raise HostCertificateError(name, "a user certificate was presented as a host key", cert)
    if cert.signature_key not in ca_keys:
        raise HostCertificateError(name, f"signed by an untrusted CA {cert.ca_fingerprint}", cert)
    try:
        cert.verify_signature()
    except SignatureError as exc:
        raise HostCertificateError(name, f"CA signature invalid: {exc}", cert) from exc
    if not cert.valid_at(now):
        when = "not yet valid" if now.timestamp() < cert.valid_after else "expired"
        raise HostCertificateError(name, f"certificate {when} at {now:%Y-%m-%dT%H:%M:%SZ}", cert)
    if not cert.principals:
        # OpenSSH takes an empty list as "any host"; our CA never issues one, so refuse it.
        raise HostCertificateError(name, "certificate has no principals (wildcard)", cert)
    if name.lower() not in {p.lower() for p in cert.principals}:
        raise HostCertificateError(
            name, f"name {name!r} is not among the principals {list(cert.principals)}", cert
        )
    unknown = set(cert.critical_options) - _ALLOWED_HOST_CRITICAL
    if unknown:
        raise HostCertificateError(name, f"unsupported critical options {sorted(unknown)}", cert)
    if krl is not None:
        _check_krl(cert, krl, name)
    return cert


def _blob_type(blob: bytes, name: str) -> str:
    try:
        return blob_type(blob, "host key")
    except WireError as exc:
        raise HostCertificateError(name, f"unreadable host key: {exc}") from exc


def _check_krl(cert: Certificate, krl: Path, name: str) -> None:
    """Fail closed: a KRL that is configured but missing or unreadable refuses the host, as sshd
    does with a missing RevokedKeys file. ``ssh-keygen -Q`` checks serial, key id, the certified
    key and the CA key itself."""
    if not krl.is_file():
        raise HostCertificateError(name, f"host KRL {krl} is missing", cert)
    fd, tmp = tempfile.mkstemp(prefix="hostcert-", suffix="-cert.pub")
    try:
        os.write(fd, f"{cert.key_type} {base64.b64encode(cert.blob).decode()}\n".encode())
        os.close(fd)
        try:
            revoked = ca.is_revoked(krl, Path(tmp))
        except SshTrustError as exc:
            raise HostCertificateError(name, f"cannot check KRL {krl}: {exc}", cert) from exc
    finally:
        os.unlink(tmp)
    if revoked:
        raise HostCertificateError(name, f"certificate revoked by {krl}", cert)
