"""OpenSSH certificates (PROTOCOL.certkeys, ``*-cert-v01@openssh.com``), parsed and verified by
``cryptography`` (``load_ssh_public_identity`` / ``SSHCertificate.verify_cert_signature``).

Used by the host-key check (paramiko cannot check host certificates) and by the audit that lists
who may log in where (R-INC-3: principals, validity, key ids). Added here, what cryptography
does not do: a plain-key/certificate type check, UTF-8 names, the certified and CA key blobs as
OpenSSH writes them (fingerprints, comparisons), and OpenSSH's signature policy (no SHA-1
``ssh-rsa`` CA signatures, RSA CA keys of at least 2048 bits). Key types cryptography cannot load
(DSA, ``sk-*``) are refused.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import SSHCertificate, load_ssh_public_identity

from ._run import SshTrustError
from ._wire import blob_type, read_string, string
from .keys import CERT_SUFFIX, KeyFormatError, fingerprint_blob, openssh_blob, read_pubkey

FOREVER = 0xFFFF_FFFF_FFFF_FFFF
# What cryptography raises on bad input ("Need uncompressed point" is a NotImplementedError).
PARSE_ERRORS = (ValueError, UnsupportedAlgorithm, NotImplementedError)
MIN_RSA_BITS = 2048
# Signature algorithms OpenSSH (>= 8.2) accepts from a CA by default: ssh-rsa (SHA-1) is not one.
SIGNATURE_ALGORITHMS = frozenset(
    {
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "rsa-sha2-256",
        "rsa-sha2-512",
    }
)


class CertType(enum.IntEnum):
    USER = 1
    HOST = 2


class CertificateError(KeyFormatError):
    """A certificate is malformed (not one OpenSSH would accept either)."""


class SignatureError(SshTrustError):
    """A CA signature is malformed, uses a refused algorithm, or does not verify."""


def _ts(value: int) -> datetime | None:
    return None if value >= FOREVER else datetime.fromtimestamp(min(value, 253402300799), UTC)


@dataclass(frozen=True)
class Certificate:
    """An OpenSSH certificate's fields, with the key blobs as OpenSSH writes them."""

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
    signature_key: bytes  # the CA's plain public key blob
    signature_type: str  # the CA signature's algorithm
    blob: bytes  # the whole certificate
    parsed: SSHCertificate = field(repr=False, compare=False)

    # --- derived facts -------------------------------------------------------------------------
    @property
    def key_fingerprint(self) -> str:
        return fingerprint_blob(self.public_key_blob)

    @property
    def ca_fingerprint(self) -> str:
        return fingerprint_blob(self.signature_key)

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
        """Raise :class:`SignatureError` unless the embedded CA key signed this certificate."""
        if self.signature_type not in SIGNATURE_ALGORITHMS:
            raise SignatureError(f"CA signature type {self.signature_type!r} refused")
        try:
            ca_key = self.parsed.signature_key()
            if isinstance(ca_key, rsa.RSAPublicKey) and ca_key.key_size < MIN_RSA_BITS:
                raise SignatureError(f"RSA CA key of {ca_key.key_size} bits is too small")
            self.parsed.verify_cert_signature()
        except InvalidSignature as exc:
            raise SignatureError("signature does not verify with the signing key") from exc
        except PARSE_ERRORS as exc:
            raise SignatureError(f"malformed CA key or signature: {exc}") from exc

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
    blob = bytes(blob)
    try:
        return _parse(blob)
    except CertificateError:
        raise
    except PARSE_ERRORS as exc:  # WireError, cryptography's errors
        raise CertificateError(f"malformed certificate: {exc}") from exc


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CertificateError(f"{what} is not UTF-8") from exc


def _parse(blob: bytes) -> Certificate:
    key_type = blob_type(blob, "certificate")
    if not key_type.endswith(CERT_SUFFIX):
        raise CertificateError(f"{key_type!r} is a plain key, not a certificate")
    cert = load_ssh_public_identity(f"{key_type} ".encode() + base64.b64encode(blob))
    if not isinstance(cert, SSHCertificate):  # pragma: no cover - the label says certificate
        raise CertificateError(f"{key_type!r} did not parse as a certificate")
    key_blob = openssh_blob(cert.public_key())
    ca_blob, signature_type = _trailer(blob, key_blob)
    if blob_type(ca_blob, "signature key").endswith(CERT_SUFFIX):
        # PROTOCOL.certkeys: the CA key is a plain key; chained certificates are not allowed.
        raise CertificateError("a certificate cannot be signed by a certificate")
    if cert.valid_after > cert.valid_before:
        raise CertificateError("valid_after is later than valid_before")
    return Certificate(
        key_type=key_type,
        nonce=cert.nonce,
        public_key_type=blob_type(key_blob),
        public_key_blob=key_blob,
        serial=cert.serial,
        cert_type=CertType(cert.type.value),
        key_id=_text(cert.key_id, "key id"),
        principals=tuple(_text(p, "principal") for p in cert.valid_principals),
        valid_after=cert.valid_after,
        valid_before=cert.valid_before,
        critical_options=_options(cert.critical_options, "critical option"),
        extensions=_options(cert.extensions, "extension"),
        signature_key=ca_blob,
        signature_type=signature_type,
        blob=blob,
        parsed=cert,
    )


def _options(raw: Mapping[bytes, bytes], what: str) -> dict[str, str]:
    return {_text(k, what): _text(v, f"{what} {k!r}") for k, v in raw.items()}


def _trailer(blob: bytes, key_blob: bytes) -> tuple[bytes, str]:
    """The CA key blob and the signature algorithm, which cryptography does not expose.

    Walks the certificate's framing (nonce, certified key, then fixed fields) to its last two
    fields; the certified key's bytes must be exactly its OpenSSH encoding (fail closed)."""
    pos = read_string(blob, 0, "certificate")[1]  # key type
    pos = read_string(blob, pos, "nonce")[1]
    key_fields = key_blob[len(string(blob_type(key_blob).encode())) :]
    if blob[pos : pos + len(key_fields)] != key_fields:
        raise CertificateError("certified key is not in canonical OpenSSH encoding")
    pos += len(key_fields) + 12  # uint64 serial, uint32 type
    pos = read_string(blob, pos, "key id")[1]
    pos = read_string(blob, pos, "principals")[1] + 16  # uint64 valid_after, valid_before
    for what in ("critical options", "extensions", "reserved"):
        pos = read_string(blob, pos, what)[1]
    ca_blob, pos = read_string(blob, pos, "signature key")
    signature, pos = read_string(blob, pos, "signature")
    if pos != len(blob):
        raise CertificateError(f"{len(blob) - pos} trailing bytes")
    return ca_blob, _text(read_string(signature, 0, "signature")[0], "signature type")


def load_certificate(cert: Path | str) -> Certificate:
    """Read a ``*-cert.pub`` file (or its text) and parse it."""
    line = read_pubkey(cert)
    if not line.is_certificate:
        raise CertificateError(f"{cert}: {line.key_type!r} is a plain key, not a certificate")
    return parse_certificate(line.blob)
