"""The lab's TLS certificate authority: what the lab hands the proxy instead of ACME.

A lab-only CA (ECDSA P-256) in `<state>/tls/` signs a certificate for the sites' names (the
wildcard of their parent domain, roles.proxy.names), 90 days like ACME's, re-issued when the
names change or less than 30 days are left. The lab issues it when it writes its inventory
(`python -m lab up`, `python -m lab inventory`) and names the directory in the inventory
(`tls.source.directory`: fullchain.pem + privkey.pem, what roles.proxy.certificate reads) and
the CA certificate lab clients (curl, sslyze) trust (`tls.source.client_ca`). The proxy role
only reads them: nothing is written on the admin's disk during a deploy (issue 12).
"""
from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from roles.proxy.certificate import CHAIN_FILE, KEY_FILE, dns_names
from roles.proxy.names import certificate_names

LEAF_DAYS = 90
RENEW_BEFORE = timedelta(days=30)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    tmp.rename(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def ensure_ca(directory: Path, name: str = "Hosting lab TLS CA") -> tuple[Path, Path]:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_path, cert_path = directory / "ca.key", directory / "ca.pem"
    if key_path.exists() and cert_path.exists():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path


def _current(leaf_path: Path, names: tuple[str, ...]) -> bool:
    if not leaf_path.exists():
        return False
    cert = x509.load_pem_x509_certificates(leaf_path.read_bytes())[0]
    return (sorted(dns_names(cert)) == sorted(names)
            and cert.not_valid_after_utc - datetime.now(UTC) > RENEW_BEFORE)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One issuer at a time: two `python -m lab inventory` at once must not leave one's key
    beside the other's certificate."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def issue(directory: Path, label: str, names: tuple[str, ...]) -> Path:
    """The directory `<directory>/<label>` holding fullchain.pem and privkey.pem for `names`
    (issued now if missing, stale or for other names; left alone otherwise)."""
    with _locked(directory):
        return _issue(directory, label, names)


def _issue(directory: Path, label: str, names: tuple[str, ...]) -> Path:
    ca_cert_path, ca_key_path = ensure_ca(directory)
    out = directory / label
    out.mkdir(mode=0o700, exist_ok=True)
    chain_path, key_path = out / CHAIN_FILE, out / KEY_FILE
    if not (_current(chain_path, names) and key_path.exists()):
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=LEAF_DAYS))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                               critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False,
                                             crl_sign=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)  # type: ignore[arg-type]
                .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
        _write(key_path, _key_pem(key), 0o600)
        # The leaf only: a root in the chain is dead weight (clients trust it or not).
        _write(chain_path, leaf.public_bytes(serialization.Encoding.PEM), 0o644)
    return out


def site_names(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """Every name a site answers to, from an inventory document."""
    return tuple(n for s in doc["sites"] for n in (s["domain"], *s["aliases"]))


def ensure_for_inventory(directory: Path, doc: Mapping[str, Any]) -> dict[str, str]:
    """Issue (or keep) the proxy's certificate for the inventory's sites; the inventory's
    `tls.source` pointing at it."""
    out = issue(directory, str(doc["environment"]), certificate_names(site_names(doc)))
    return {"directory": str(out), "client_ca": str(directory / "ca.pem")}
