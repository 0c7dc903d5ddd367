"""Fixtures for the roles' unit tests (tests/unit/roles/<role>/, one folder per roles/<role>):
the inventory documents (`prod_doc`, `preprod_doc`: dicts, built and validated by the model's
own code from the real stack files, for tests that change a document before typing it; the
typed `prod`/`preprod` the roles read come from tests/unit/conftest.py), a
way to run `nginx -t` on rendered configs (in a private network namespace, where nginx may bind
the sites' addresses), and a throwaway certificate for it."""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from model import load_stack
from model.inventory import HostAddresses, build_inventory, validate_inventory
from model.topology import private_addresses

ROOT = Path(__file__).resolve().parents[3]
FP = "SHA256:" + "A" * 43
PROXY_PUBLIC = "203.0.113.5"


def make_inventory(env: str) -> dict[str, Any]:
    stack = load_stack(ROOT / f"Pulumi.{env}.yaml")
    addrs = private_addresses(stack)
    site_ips = tuple(str(s.public_ip) for s in stack.sites)
    hosts = [HostAddresses(n, str(ip), PROXY_PUBLIC if n in ("proxy", "ops") else None,
                           site_ips if n == "proxy" else ())
             for n, ip in addrs.items()]
    doc = build_inventory(stack, source="pulumi", hosts=hosts,
                          site_public_ips={s.name: str(s.public_ip) for s in stack.sites},
                          host_key_fingerprints={n: FP for n in addrs})
    validate_inventory(doc)
    return doc


@pytest.fixture(scope="session")
def prod_doc() -> dict[str, Any]:
    return make_inventory("prod")


@pytest.fixture(scope="session")
def preprod_doc() -> dict[str, Any]:
    return make_inventory("preprod")


def nginx_version() -> tuple[int, ...] | None:
    if not shutil.which("nginx"):
        return None
    out = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr
    return tuple(int(x) for x in out.strip().split("/")[-1].split(".")[:3])


@pytest.fixture(scope="session")
def nginx_test() -> Callable[[str, Path], subprocess.CompletedProcess[str]]:
    """Run `nginx -t` on a config file inside a new network namespace with
    net.ipv4.ip_nonlocal_bind=1 (nginx -t binds the listen addresses)."""
    if nginx_version() is None:
        pytest.skip("nginx is not installed (scripts/install-system-deps installs it)")
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("nginx -t on the sites' addresses needs root (a network namespace)")

    def run(conf: str, tmp: Path) -> subprocess.CompletedProcess[str]:
        path = tmp / "nginx.conf"
        path.write_text(conf)
        script = ("ip link set lo up && sysctl -qw net.ipv4.ip_nonlocal_bind=1 && "
                  f"nginx -t -c {path}")
        return subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True,
                              text=True, timeout=60)
    return run


@pytest.fixture(scope="session")
def test_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate + key for nginx -t (it loads them) and the proxy
    role's TLS source: the prod sites' names, ECDSA P-256, 90 days like ACME."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unit")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("*.villeparisis.fr"), x509.DNSName("villeparisis.fr")]),
                critical=False)
            .sign(key, hashes.SHA256()))
    chain, key_path = d / "unit.fullchain.pem", d / "unit.key"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return chain, key_path


@pytest.fixture(scope="session")
def internal_ca(tmp_path_factory: pytest.TempPathFactory, prod):
    """An internal CA directory (engine/tls_ca.py) with the prod inventory's leaves issued:
    (ca_dir, InternalTls)."""
    from engine import tls_ca

    d = tmp_path_factory.mktemp("internal-ca")
    tls_ca.create(d, "unit")
    return d, tls_ca.ensure(d, prod)


@pytest.fixture(scope="session")
def internal_files(internal_ca, tmp_path_factory: pytest.TempPathFactory):
    """The proxy -> web hop's files written where nginx -t can load them: (proxy paths, web
    host web-villeparisis paths)."""
    from roles.proxy.render import InternalPaths
    from roles.web.render import InternalFiles

    _d, tls = internal_ca
    out = tmp_path_factory.mktemp("internal-files")
    client, server = tls.client("proxy"), tls.server("web-villeparisis")
    files = {"ca.pem": tls.ca_pem, "client.pem": client.cert_pem, "client.key": client.key_pem,
             "server.pem": server.cert_pem, "server.key": server.key_pem}
    for name, data in files.items():
        (out / name).write_bytes(data)
    return (InternalPaths(str(out / "ca.pem"), str(out / "client.pem"), str(out / "client.key")),
            InternalFiles(str(out / "ca.pem"), str(out / "server.pem"), str(out / "server.key")))
