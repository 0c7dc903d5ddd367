"""Fixtures shared by the engine's, the tasks' and the roles' unit tests (tests/unit/engine,
tasks, roles): real typed inventories built by the model's own code from the stack files, host
contexts, and the real validators (`sshd -t`, `nft -c` in a throwaway network namespace).
tests/unit/roles/conftest.py adds the inventory documents (`prod_doc`, `preprod_doc`: dicts)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.facts import SystemFacts  # noqa: E402
from engine.inventory import Inventory  # noqa: E402
from engine.role import HostContext, Settings  # noqa: E402
from model import load_stack  # noqa: E402
from model.inventory import HostAddresses, build_inventory  # noqa: E402
from model.topology import plan_hosts, private_addresses  # noqa: E402

FP = "SHA256:" + "A" * 43
PUBLIC = {"proxy": "198.51.100.20", "ops": "198.51.100.21"}


def make_inventory(env: str) -> Inventory:
    stack = load_stack(ROOT / f"Pulumi.{env}.yaml")
    addrs = private_addresses(stack)
    site_ips = tuple(str(s.public_ip) for s in stack.sites)
    hosts = [HostAddresses(p.name, str(addrs[p.name]), PUBLIC.get(p.name),
                           site_ips if p.role == "proxy" else ()) for p in plan_hosts(stack)]
    doc = build_inventory(stack, source="pulumi", hosts=hosts,
                          site_public_ips={s.name: str(s.public_ip) for s in stack.sites},
                          host_key_fingerprints={p.name: FP for p in plan_hosts(stack)})
    return Inventory.from_doc(doc)


@pytest.fixture(scope="session")
def prod() -> Inventory:
    return make_inventory("prod")


@pytest.fixture(scope="session")
def preprod() -> Inventory:
    return make_inventory("preprod")


@pytest.fixture(scope="session")
def local_algorithms() -> dict[str, tuple[str, ...]]:
    """What this machine's OpenSSH supports (`ssh -Q`): what `sshd -t` here accepts."""
    out = {}
    for q in ("kex", "cipher", "mac", "key"):
        proc = subprocess.run(["ssh", "-Q", q], capture_output=True, text=True, check=False)
        out[q] = tuple(proc.stdout.split())
    return out


@pytest.fixture
def ctx_for(prod: Inventory) -> Callable[..., HostContext]:
    def make(name: str, inv: Inventory | None = None, container: str = "",
             algorithms: dict[str, tuple[str, ...]] | None = None,
             krl: bytes | None = None) -> HostContext:
        inv = inv or prod
        system = SystemFacts(container=container, ssh_algorithms=algorithms or {})
        return HostContext(inv, inv.host(name), system, Settings(user_krl=krl))
    return make


# --- the real validators -------------------------------------------------------------------------


def _run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60, **kw)


@pytest.fixture
def sshd_check() -> Callable[[Path], subprocess.CompletedProcess[str]]:
    """`sshd -t -f FILE`. sshd insists on its privilege separation directory /run/sshd, which
    only exists where sshd runs: elsewhere (CI) it gets a private one in a mount namespace."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists():
        pytest.skip("sshd is not installed (scripts/install-system-deps installs it)")

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        if Path("/run/sshd").is_dir():
            return _run([sshd, "-t", "-f", str(path)])
        if os.geteuid() != 0:
            pytest.skip("no /run/sshd and not root: cannot give sshd -t its directory")
        script = f"mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec {sshd} -t -f {path}"
        return _run(["unshare", "-m", "sh", "-c", script])
    return check


@pytest.fixture
def nft_check() -> Callable[[str], subprocess.CompletedProcess[str]]:
    """`nft -c -f FILE` in a throwaway network namespace (never touches the machine's own
    ruleset); needs root."""
    nft = shutil.which("nft") or "/usr/sbin/nft"
    if not Path(nft).exists():
        pytest.skip("nft is not installed")
    if os.geteuid() != 0:
        pytest.skip("nft -c needs root (CAP_NET_ADMIN in a network namespace)")

    def check(text: str) -> subprocess.CompletedProcess[str]:
        return _run(["unshare", "-n", nft, "-c", "-f", "/dev/stdin"], input=text)
    return check
