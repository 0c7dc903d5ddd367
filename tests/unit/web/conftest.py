"""Fixtures for the web tier's unit tests: inventories built by the model's own code from the
real stack files, and a way to run `nginx -t` on rendered configs (in a private network
namespace, where nginx may bind the sites' addresses)."""
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
def prod() -> dict[str, Any]:
    return make_inventory("prod")


@pytest.fixture(scope="session")
def preprod() -> dict[str, Any]:
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
    """A throwaway certificate + key for nginx -t (it loads them)."""
    from roles.proxy import lab_cert

    d = tmp_path_factory.mktemp("tls")
    lab_cert.issue(d, "unit", ("*.villeparisis.fr", "villeparisis.fr"))
    return d / "unit.fullchain.pem", d / "unit.key"
