"""roles/proxy/role.py tls_material: the proxy's certificate is read from $HOSTING_TLS_DIR, else
from the inventory's tls.source.directory (where the lab's CA put it), else left alone; the
role reads that directory and never writes on the admin's disk (issue 12)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.facts import SystemFacts
from engine.inventory import Inventory
from engine.resources import File
from engine.role import HostContext
from lab import tls  # tests may use the lab's CA; roles may not
from roles.proxy.certificate import KEY_FILE, CertificateError
from roles.proxy.role import proxy

KEY_PATH = "/etc/ssl/hosting/wildcard.villeparisis.fr.key"
NAMES = ("*.villeparisis.fr", "villeparisis.fr")


def ctx_with_source(inv: Inventory, directory: Path | None) -> HostContext:
    doc = json.loads(json.dumps(inv.doc))
    if directory is not None:
        doc["tls"]["source"] = {"directory": str(directory)}
    typed = Inventory.from_doc(doc)
    return HostContext(typed, typed.host("proxy"), SystemFacts(container="systemd-nspawn"))


def installed_key(ctx: HostContext) -> bytes | None:
    files = {r.path: r for r in proxy(ctx).resources if isinstance(r, File)}
    return files[KEY_PATH].data if KEY_PATH in files else None


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_mode)
            for p in sorted(directory.rglob("*"))}


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOSTING_TLS_DIR", raising=False)


def test_proxy_inventory_tls_source_installs_its_pair(prod: Inventory, tmp_path: Path,
                                                      no_env: None) -> None:
    source = tls.issue(tmp_path, "prod", NAMES)
    before = snapshot(tmp_path)
    assert installed_key(ctx_with_source(prod, source)) == (source / KEY_FILE).read_bytes()
    assert snapshot(tmp_path) == before  # read, not re-issued nor touched


def test_proxy_tls_dir_env_wins_over_inventory(prod: Inventory, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from_inventory = tls.issue(tmp_path / "a", "prod", NAMES)
    from_env = tls.issue(tmp_path / "b", "prod", NAMES)
    monkeypatch.setenv("HOSTING_TLS_DIR", str(from_env))
    assert installed_key(ctx_with_source(prod, from_inventory)) == (
        from_env / KEY_FILE).read_bytes()


def test_proxy_no_source_anywhere_leaves_certificate_alone(prod: Inventory,
                                                           no_env: None) -> None:
    assert installed_key(ctx_with_source(prod, None)) is None


def test_proxy_inventory_tls_source_empty_fails_naming_directory(
        prod: Inventory, tmp_path: Path, no_env: None) -> None:
    with pytest.raises(CertificateError, match=f"{tmp_path}: cannot read"):
        proxy(ctx_with_source(prod, tmp_path))
    assert list(tmp_path.iterdir()) == []  # nothing issued on the admin's disk
