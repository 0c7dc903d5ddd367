"""Installing the sites' certificate on the proxy, whatever obtained it (R-SCOPE-2).

Obtaining is somebody else's job: the lab's CA (lab/tls.py, issued when the lab writes its
inventory), ACME DNS-01 on ops (issue 14: its lineages have files of their own, this pair is
their fallback), or a bought certificate uploaded by hand
(DESIGN.md's fallback). Each leaves a PEM chain and key in a directory on the admin's machine
(fullchain.pem, privkey.pem: certbot's names), named by $HOSTING_TLS_DIR or by the inventory's
`tls.source.directory`; this module reads them (never writes), checks the pair (key matches,
covers every site name, valid for long enough) and turns it into File resources at the paths
the model names (`tls.certificate`, `tls.key`). Without a source the proxy role leaves the
files alone and nginx's validation says if they are missing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from engine.resources import Directory, File, Resource
from roles.proxy.names import uncovered

SOURCE_ENV = "HOSTING_TLS_DIR"  # a directory with CHAIN_FILE and KEY_FILE
CHAIN_FILE = "fullchain.pem"  # the leaf first, then any intermediates
KEY_FILE = "privkey.pem"
MIN_VALIDITY = timedelta(days=7)


class CertificateError(ValueError):
    pass


@dataclass(frozen=True)
class Material:
    chain_pem: bytes
    key_pem: bytes
    origin: str  # where it came from, for error messages


def dns_names(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return ext.value.get_values_for_type(x509.DNSName)


def check(m: Material, names: tuple[str, ...], now: datetime | None = None) -> x509.Certificate:
    """The leaf certificate, or CertificateError saying what is wrong."""
    try:
        chain = x509.load_pem_x509_certificates(m.chain_pem)
        key = serialization.load_pem_private_key(m.key_pem, password=None)
    except ValueError as exc:
        raise CertificateError(f"{m.origin}: unreadable certificate or key: {exc}") from exc
    leaf = chain[0]
    if leaf.public_key().public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo) != \
            key.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo):
        raise CertificateError(f"{m.origin}: the key does not match the certificate")
    sans = dns_names(leaf)
    missing = uncovered(sans, names)
    if missing:
        raise CertificateError(f"{m.origin}: the certificate does not cover {', '.join(missing)}"
                               f" (it has {', '.join(sans) or 'no DNS names'})")
    now = now or datetime.now(UTC)
    if leaf.not_valid_after_utc - now < MIN_VALIDITY:
        raise CertificateError(f"{m.origin}: the certificate expires {leaf.not_valid_after_utc:%F}")
    return leaf


def from_directory(path: Path) -> Material:
    try:
        return Material((path / CHAIN_FILE).read_bytes(), (path / KEY_FILE).read_bytes(),
                        str(path))
    except OSError as exc:
        raise CertificateError(f"{path}: cannot read the certificate source: {exc}") from exc


def resources(m: Material, cert_path: str, key_path: str, names: tuple[str, ...],
              notify: tuple[str, ...]) -> list[Resource]:
    """With ACME on (issue 14) this pair is still installed here by every deploy: it is the
    fallback, and ACME's lineages live in files of their own (roles/proxy/role.py)."""
    check(m, names)
    dirs = sorted({os.path.dirname(cert_path), os.path.dirname(key_path)})
    return [
        *(Directory(d, 0o755) for d in dirs),
        # The key first: nginx must never see a new certificate with the old key.
        File(key_path, m.key_pem, 0o600, sensitive=True, notify=notify),
        File(cert_path, m.chain_pem, 0o644, notify=notify),
    ]
