"""The internal X.509 CA of the proxy -> web hop (issue 19 item 6, R-GDPR-2, R-HOST-1).

The proxy authenticates to the web hosts with a client certificate from this CA, and the web
hosts answer with a server certificate from it: the private hop is encrypted, and a web host
trusts `X-Forwarded-For` only from the authenticated proxy (a host spoofing the proxy's private
address cannot finish the handshake). Admin side only: the CA lives in the CA directory beside
the SSH CAs (engine/ca_admin.py); `fab ca.create` creates it, `fab deploy` calls `ensure`
before converging and hands the result to the roles through Settings.internal_tls (roles
never issue certificates nor write here).

Files in the CA directory (keys 0600, the directory is 0700):
  internal_ca.key, internal_ca.pem          ECDSA P-256, 10 years
  internal/<host>.key, internal/<host>.pem  leaves, 90 days, re-issued with under 30 days left,
                                            when their names change or when another CA signed them
  internal/<host>.log-client.{key,pem}      central logging (issue 17, docs/logging.md): every
  internal/<ops>.log-server.{key,pem}       host's rsyslog client leaf, ops' listener leaf
The proxy's leaf: CN = its host name, EKU clientAuth. A web host's: CN and SAN DNS = its host
name, SAN IP = its private address, EKU serverAuth. A log client's: CN and SAN DNS = its host
name, EKU clientAuth; the log server's (the bastion, ops): the web hosts' shape.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from engine.inventory import Inventory

CA_KEY = "internal_ca.key"
CA_CERT = "internal_ca.pem"
LEAF_DIR = "internal"
CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=90)
RENEW_BEFORE = timedelta(days=30)
BACKDATE = timedelta(minutes=5)  # tolerate small clock differences between hosts


class TlsCaError(RuntimeError):
    pass


@dataclass(frozen=True)
class Leaf:
    cert_pem: bytes
    key_pem: bytes = b""

    def __repr__(self) -> str:  # never print a key (tracebacks, logs)
        return f"Leaf(cert_pem=<{len(self.cert_pem)} bytes>, key_pem=<hidden>)"


@dataclass(frozen=True)
class InternalTls:
    """What the roles need: the CA's certificate, each proxy's client leaf and each web host's
    server leaf, by host name."""
    ca_pem: bytes
    clients: tuple[tuple[str, Leaf], ...]
    servers: tuple[tuple[str, Leaf], ...]
    # Central logging (issue 17): every host's rsyslog client leaf, the collector's server leaf.
    log_clients: tuple[tuple[str, Leaf], ...] = ()
    log_servers: tuple[tuple[str, Leaf], ...] = ()

    def client(self, host: str) -> Leaf:
        return self._find(self.clients, host, "client")

    def server(self, host: str) -> Leaf:
        return self._find(self.servers, host, "server")

    def log_client(self, host: str) -> Leaf:
        return self._find(self.log_clients, host, "log client")

    def log_server(self, host: str) -> Leaf:
        return self._find(self.log_servers, host, "log server")

    @staticmethod
    def _find(pairs: tuple[tuple[str, Leaf], ...], host: str, kind: str) -> Leaf:
        for name, leaf in pairs:
            if name == host:
                return leaf
        raise TlsCaError(f"no internal TLS {kind} certificate for host {host!r} "
                         f"(have: {', '.join(n for n, _ in pairs) or 'none'})")


def ca_paths(ca_dir: Path) -> tuple[Path, Path]:
    return Path(ca_dir) / CA_KEY, Path(ca_dir) / CA_CERT


def _write_private(path: Path, data: bytes) -> None:
    """Written 0600 from the start, then renamed into place (never a readable window)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def create(ca_dir: Path, env: str, now: datetime | None = None) -> bool:
    """The internal CA (key 0600 + self-signed certificate) unless both exist; True if
    created. Idempotent, like engine.ca_admin.create."""
    key_path, cert_path = ca_paths(ca_dir)
    if key_path.is_file() and cert_path.is_file():
        return False
    if key_path.exists() != cert_path.exists():
        present = key_path if key_path.exists() else cert_path
        raise TlsCaError(f"{present} exists without its pair: restore it from the backup of "
                         "the CA directory or remove it to start a new internal CA")
    Path(ca_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    now = now or datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"villeparisis-{env}-internal-ca")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(_cert_pem(cert))
    return True


def load_ca(ca_dir: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
    """The CA's key and certificate, or None when this CA directory holds no internal CA."""
    key_path, cert_path = ca_paths(ca_dir)
    if not key_path.is_file() or not cert_path.is_file():
        return None
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError as exc:
        raise TlsCaError(f"{ca_dir}: unreadable internal CA ({CA_KEY}/{CA_CERT}): {exc}") \
            from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsCaError(f"{key_path}: not an ECDSA key")
    return key, cert


def _names(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    return (tuple(san.get_values_for_type(x509.DNSName)),
            tuple(str(a) for a in san.get_values_for_type(x509.IPAddress)))


def needs_issue(cert_pem: bytes | None, ca_cert: x509.Certificate, cn: str,
                dns: tuple[str, ...], ips: tuple[str, ...], now: datetime | None = None) -> str:
    """Why a leaf must be (re)issued, or "" when it is good."""
    if not cert_pem:
        return "missing"
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        return "unreadable"
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return "not signed by the internal CA"
    now = now or datetime.now(UTC)
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return f"expires {cert.not_valid_after_utc:%F}"
    subject = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if subject != [cn] or _names(cert) != (dns, ips):
        return "names changed"
    return ""


def issue(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, cn: str,
          dns: Iterable[str], ips: Iterable[str], *, client: bool,
          now: datetime | None = None) -> Leaf:
    now = now or datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ip_address(i)) for i in ips]
    eku = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - BACKDATE).not_valid_after(now + LEAF_VALIDITY)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, key_cert_sign=False,
                                            crl_sign=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca_key.public_key()), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return Leaf(_cert_pem(cert), _key_pem(key))


def ensure_leaf(ca_dir: Path, ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
                host: str, dns: tuple[str, ...], ips: tuple[str, ...], *, client: bool,
                now: datetime | None = None, stem: str = "") -> tuple[Leaf, str]:
    """The leaf of `host` from the CA directory, (re)issued when needed; (leaf, why issued).
    `stem` names its files when not the host's name (a second leaf of the same host)."""
    d = Path(ca_dir) / LEAF_DIR
    stem = stem or host
    cert_path, key_path = d / f"{stem}.pem", d / f"{stem}.key"
    current = cert_path.read_bytes() if cert_path.is_file() else None
    why = needs_issue(current, ca[1], host, dns, ips, now)
    if not why and not key_path.is_file():
        why = "key missing"
    if why:
        leaf = issue(ca[0], ca[1], host, dns, ips, client=client, now=now)
        _write_private(key_path, leaf.key_pem)  # the key first: never a cert without its key
        cert_path.write_bytes(leaf.cert_pem)
        return leaf, why
    return Leaf(current or b"", key_path.read_bytes()), ""


def ensure(ca_dir: Path, inv: Inventory, now: datetime | None = None,
           emit=None) -> InternalTls | None:  # noqa: ANN001 - emit: Callable[[str], None]
    """Every leaf the inventory's proxies and web hosts need, and the central logging's (every
    host a log client, the bastion the log server), issued or renewed in the CA directory;
    None when the directory holds no internal CA (the roles then leave the hosts' internal
    TLS files as they are)."""
    ca = load_ca(ca_dir)
    if ca is None:
        return None
    clients, servers = [], []
    for h in inv.by_role("proxy"):
        leaf, why = ensure_leaf(ca_dir, ca, h.name, (), (), client=True, now=now)
        clients.append((h.name, leaf))
        if why and emit:
            emit(f"internal TLS: issued the client certificate of {h.name} ({why})")
    for h in inv.by_role("web"):
        ips = (h.private_ip,) if h.private_ip else ()
        leaf, why = ensure_leaf(ca_dir, ca, h.name, (h.name,), ips, client=False, now=now)
        servers.append((h.name, leaf))
        if why and emit:
            emit(f"internal TLS: issued the server certificate of {h.name} ({why})")
    log_clients, log_servers = [], []
    for h in inv.hosts:
        leaf, why = ensure_leaf(ca_dir, ca, h.name, (h.name,), (), client=True, now=now,
                                stem=f"{h.name}.log-client")
        log_clients.append((h.name, leaf))
        if why and emit:
            emit(f"internal TLS: issued the log client certificate of {h.name} ({why})")
    ops = inv.bastion
    ips = (ops.private_ip,) if ops.private_ip else ()
    leaf, why = ensure_leaf(ca_dir, ca, ops.name, (ops.name,), ips, client=False, now=now,
                            stem=f"{ops.name}.log-server")
    log_servers.append((ops.name, leaf))
    if why and emit:
        emit(f"internal TLS: issued the log server certificate of {ops.name} ({why})")
    return InternalTls(_cert_pem(ca[1]), tuple(clients), tuple(servers), tuple(log_clients),
                       tuple(log_servers))
