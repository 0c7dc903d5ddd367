"""Pure-Python parser of OpenSSH certificates (PROTOCOL.certkeys, ``*-cert-v01@openssh.com``).

Used by the host-key check (paramiko cannot read host certificates) and by the audit that lists
who may log in where (R-INC-3: principals, validity, key ids).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import signature
from ._wire import Reader, WireError, string
from .keys import CERT_SUFFIX, KeyFormatError, fingerprint_blob, read_pubkey

FOREVER = 0xFFFF_FFFF_FFFF_FFFF


class CertType(enum.IntEnum):
    USER = 1
    HOST = 2


def _ed25519(r: Reader) -> list[bytes]:
    return [string(r.string())]


def _ecdsa(r: Reader) -> list[bytes]:
    return [string(r.string()), string(r.string())]


def _rsa(r: Reader) -> list[bytes]:
    return [string(r.string()), string(r.string())]  # mpint e, mpint n: same framing as string


def _sk_ed25519(r: Reader) -> list[bytes]:
    return [string(r.string()), string(r.string())]  # key, application


def _sk_ecdsa(r: Reader) -> list[bytes]:
    return [string(r.string()), string(r.string()), string(r.string())]


# certificate type -> (plain key type, reader of the public key fields, kept as raw framed bytes)
_KEY_LAYOUTS: dict[str, tuple[str, Callable[[Reader], list[bytes]]]] = {
    "ssh-ed25519" + CERT_SUFFIX: ("ssh-ed25519", _ed25519),
    "ecdsa-sha2-nistp256" + CERT_SUFFIX: ("ecdsa-sha2-nistp256", _ecdsa),
    "ecdsa-sha2-nistp384" + CERT_SUFFIX: ("ecdsa-sha2-nistp384", _ecdsa),
    "ecdsa-sha2-nistp521" + CERT_SUFFIX: ("ecdsa-sha2-nistp521", _ecdsa),
    "ssh-rsa" + CERT_SUFFIX: ("ssh-rsa", _rsa),
    "sk-ssh-ed25519" + CERT_SUFFIX: ("sk-ssh-ed25519@openssh.com", _sk_ed25519),
    "sk-ecdsa-sha2-nistp256" + CERT_SUFFIX: ("sk-ecdsa-sha2-nistp256@openssh.com", _sk_ecdsa),
}
CERT_TYPES = frozenset(_KEY_LAYOUTS)


class CertificateError(KeyFormatError):
    """A certificate is malformed (not one OpenSSH would accept either)."""


def _options(raw: bytes, what: str) -> dict[str, str]:
    """Critical options / extensions: (name, data) pairs; data wraps a string or is empty."""
    r = Reader(raw, what)
    out: dict[str, str] = {}
    while not r.at_end:
        name = r.text()
        data = r.string()
        if name in out:
            raise CertificateError(f"{what}: duplicate {name!r}")
        if data:
            inner = Reader(data, f"{what} {name}")
            value = inner.text()
            inner.expect_end()
        else:
            value = ""
        out[name] = value
    return out


def _principals(raw: bytes) -> tuple[str, ...]:
    r = Reader(raw, "valid principals")
    out = []
    while not r.at_end:
        out.append(r.text())
    return tuple(out)


def _ts(value: int) -> datetime | None:
    return None if value >= FOREVER else datetime.fromtimestamp(min(value, 253402300799), UTC)


@dataclass(frozen=True)
class Certificate:
    """Every field of an OpenSSH certificate, plus the exact bytes the CA signed."""

    key_type: str
    nonce: bytes
    public_key_type: str
    public_key_blob: bytes  # the certified plain key, as in a *.pub file
    serial: int
    cert_type: CertType
    key_id: str
    principals: tuple[str, ...]
    valid_after: int  # seconds since the epoch, as stored
    valid_before: int  # FOREVER means no expiry
    critical_options: Mapping[str, str]
    extensions: Mapping[str, str]
    reserved: bytes
    signature_key: bytes  # the CA's plain public key blob
    signature: bytes  # signature blob: string sig-type, string sig
    signed_bytes: bytes  # everything before the signature field
    blob: bytes  # the whole certificate

    # --- derived facts -------------------------------------------------------------------------
    @property
    def key_fingerprint(self) -> str:
        return fingerprint_blob(self.public_key_blob)

    @property
    def ca_fingerprint(self) -> str:
        return fingerprint_blob(self.signature_key)

    @property
    def signature_type(self) -> str:
        return Reader(self.signature, "signature").text()

    @property
    def valid_after_dt(self) -> datetime | None:
        return _ts(self.valid_after)

    @property
    def valid_before_dt(self) -> datetime | None:
        """``None`` means "forever"."""
        return _ts(self.valid_before)

    def valid_at(self, when: datetime) -> bool:
        """OpenSSH's rule (sshkey_cert_check_authority): valid_after <= now < valid_before."""
        now = int(when.timestamp())
        return self.valid_after <= now < self.valid_before

    def verify_signature(self) -> None:
        """Raise :class:`signature.SignatureError` unless the embedded CA key signed this cert."""
        signature.verify(self.signature_key, self.signature, self.signed_bytes)

    def describe(self) -> str:
        """One line for logs and the access audit (R-INC-3)."""

        def fmt(when: datetime | None) -> str:
            return "forever" if when is None else f"{when:%Y-%m-%dT%H:%M:%SZ}"

        return (
            f"{self.cert_type.name.lower()} cert serial={self.serial} id={self.key_id!r} "
            f"principals={','.join(self.principals) or '(any)'} "
            f"valid={fmt(self.valid_after_dt)}..{fmt(self.valid_before_dt)} "
            f"key={self.key_fingerprint} ca={self.ca_fingerprint}"
        )


def parse_certificate(blob: bytes) -> Certificate:
    """Parse a certificate blob (the base64-decoded middle field of a *-cert.pub line)."""
    try:
        return _parse(blob)
    except WireError as exc:
        raise CertificateError(f"malformed certificate: {exc}") from exc


def _parse(blob: bytes) -> Certificate:
    r = Reader(blob, "certificate")
    key_type = r.text()
    if key_type not in _KEY_LAYOUTS:
        raise CertificateError(f"unsupported certificate type {key_type!r}")
    plain_type, read_key = _KEY_LAYOUTS[key_type]
    nonce = r.string()
    key_fields = read_key(r)
    serial = r.uint64()
    raw_type = r.uint32()
    try:
        cert_type = CertType(raw_type)
    except ValueError as exc:
        raise CertificateError(f"unknown certificate type {raw_type} (1=user, 2=host)") from exc
    key_id = r.text()
    principals = _principals(r.string())
    valid_after = r.uint64()
    valid_before = r.uint64()
    critical = _options(r.string(), "critical options")
    extensions = _options(r.string(), "extensions")
    reserved = r.string()
    signature_key = r.string()
    if Reader(signature_key, "signature key").text().endswith(CERT_SUFFIX):
        # PROTOCOL.certkeys: the CA key is a plain key; chained certificates are not allowed.
        raise CertificateError("a certificate cannot be signed by a certificate")
    signed_end = r.pos  # the CA signed every byte before the signature field
    sig = r.string()
    r.expect_end()
    if valid_after > valid_before:
        raise CertificateError("valid_after is later than valid_before")
    return Certificate(
        key_type=key_type,
        nonce=nonce,
        public_key_type=plain_type,
        public_key_blob=string(plain_type.encode()) + b"".join(key_fields),
        serial=serial,
        cert_type=cert_type,
        key_id=key_id,
        principals=principals,
        valid_after=valid_after,
        valid_before=valid_before,
        critical_options=critical,
        extensions=extensions,
        reserved=reserved,
        signature_key=signature_key,
        signature=sig,
        signed_bytes=blob[:signed_end],
        blob=blob,
    )


def load_certificate(cert: Path | str) -> Certificate:
    """Read a ``*-cert.pub`` file (or its text) and parse it."""
    line = read_pubkey(cert)
    if not line.is_certificate:
        raise CertificateError(f"{cert}: {line.key_type!r} is a plain key, not a certificate")
    return parse_certificate(line.blob)
