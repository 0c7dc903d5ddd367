"""The lab's TLS certificate authority: what the lab hands the proxy instead of ACME.

A lab-only CA (ECDSA P-256) in the lab's state directory signs a certificate for the sites'
names (the wildcard of their parent domain), 90 days like ACME's, re-issued when the names
change or less than 30 days are left. Its CA certificate is what lab clients (curl, sslyze)
trust. Nothing here is used outside the lab.
"""
from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from roles.proxy.certificate import Material, dns_names

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


def issue(directory: Path, label: str, names: tuple[str, ...]) -> Material:
    """The certificate for `names` (issued now if missing, stale or for other names)."""
    ca_cert_path, ca_key_path = ensure_ca(directory)
    chain_path, key_path = directory / f"{label}.fullchain.pem", directory / f"{label}.key"
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
    return Material(chain_path.read_bytes(), key_path.read_bytes(), f"lab CA ({directory})")


def lab_tls_dir() -> Path:
    """The running lab's TLS directory (LAB_* variables choose the lab, as for `fab`)."""
    from lab.config import load_config

    return load_config().state_dir / "tls"
