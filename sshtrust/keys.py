"""OpenSSH public-key lines and fingerprints, pure Python (no ssh-keygen round trip)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    SSHCertificate,
    load_ssh_public_identity,
)

from ._run import SshTrustError
from ._wire import WireError, blob_type

CERT_SUFFIX = "-cert-v01@openssh.com"


class KeyFormatError(SshTrustError, ValueError):
    """A public key or certificate line could not be read."""


@dataclass(frozen=True)
class PublicKeyLine:
    """One ``type base64 [comment]`` line as found in *.pub, known_hosts or *-cert.pub."""

    key_type: str
    blob: bytes
    comment: str = ""

    @property
    def is_certificate(self) -> bool:
        return self.key_type.endswith(CERT_SUFFIX)

    def line(self) -> str:
        b64 = base64.b64encode(self.blob).decode("ascii")
        return f"{self.key_type} {b64} {self.comment}".rstrip()


def parse_pubkey_line(text: str, source: str = "public key") -> PublicKeyLine:
    """Parse the first non-comment line of ``text``; the blob's own type must match the label."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 2:
            raise KeyFormatError(f"{source}: expected 'type base64 [comment]', got {line[:60]!r}")
        try:
            blob = base64.b64decode(parts[1], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KeyFormatError(f"{source}: key data is not base64") from exc
        try:
            inner = blob_type(blob, source)
        except WireError as exc:
            raise KeyFormatError(f"{source}: {exc}") from exc
        if inner != parts[0]:
            # A mislabelled line is how type-confusion attacks start: refuse it.
            raise KeyFormatError(f"{source}: label {parts[0]!r} but blob says {inner!r}")
        return PublicKeyLine(parts[0], blob, parts[2] if len(parts) > 2 else "")
    raise KeyFormatError(f"{source}: no key line found")


def read_pubkey(pubkey: Path | str) -> PublicKeyLine:
    """Read a key from a path, or from key text when ``pubkey`` is a str holding a key line."""
    if isinstance(pubkey, str) and len(pubkey.split()) >= 2:
        return parse_pubkey_line(pubkey, "key text")
    path = Path(pubkey)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFormatError(f"cannot read public key {path}: {exc}") from exc
    return parse_pubkey_line(text, str(path))


def fingerprint_blob(blob: bytes) -> str:
    """OpenSSH SHA256 fingerprint of a plain key blob: ``SHA256:`` + unpadded base64."""
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def openssh_blob(key: object) -> bytes:
    """The SSH wire blob of a ``cryptography`` public key (what a *.pub line base64-encodes)."""
    line = key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)  # type: ignore[attr-defined]
    return base64.b64decode(line.split()[1])


def fingerprint(pubkey: Path | str) -> str:
    """``SHA256:...`` of a public key; of the certified key for a certificate (as ssh-keygen -l)."""
    key = read_pubkey(pubkey)
    if not key.is_certificate:
        return fingerprint_blob(key.blob)
    try:
        cert = load_ssh_public_identity(key.line().encode("ascii"))
    except (ValueError, UnsupportedAlgorithm, NotImplementedError) as exc:
        raise KeyFormatError(f"{pubkey}: malformed certificate: {exc}") from exc
    assert isinstance(cert, SSHCertificate)  # the line's label says certificate
    return fingerprint_blob(openssh_blob(cert.public_key()))
