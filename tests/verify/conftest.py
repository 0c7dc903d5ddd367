"""Verification suite (testinfra) against any inventory: the lab's or a real environment's.

    pytest tests/verify --inventory inventory.json --ssh-config ssh_config
    pytest tests/verify --lab-state /var/lib/hosting-lab/vp      # the lab's files

Hosts are reached through testinfra's ssh:// backend with the given ssh_config, so OpenSSH checks
host certificates natively (@cert-authority in the known_hosts the ssh_config names).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import testinfra


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("verify", "verification of real hosts")
    group.addoption("--inventory", help="inventory document (JSON, model/inventory.schema.json)")
    # --ssh-config is pytest-testinfra's own option: the ssh_config reaching every host.
    group.addoption("--lab-state", help="a lab state dir: uses its inventory.json and ssh_config")


def _paths(config: pytest.Config) -> tuple[Path, Path]:
    lab = config.getoption("--lab-state")
    inv = config.getoption("--inventory") or (lab and Path(lab) / "inventory.json")
    ssh = config.getoption("ssh_config") or (lab and Path(lab) / "ssh_config")
    if not inv or not ssh:
        raise pytest.UsageError("tests/verify needs --inventory and --ssh-config (or --lab-state)")
    return Path(inv), Path(ssh)


@pytest.fixture(scope="session")
def inventory(pytestconfig: pytest.Config) -> dict[str, Any]:
    return json.loads(_paths(pytestconfig)[0].read_text())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `host_entry` over the inventory's hosts, optionally filtered by `roles`."""
    if "host_entry" not in metafunc.fixturenames:
        return
    inv = json.loads(_paths(metafunc.config)[0].read_text())
    marker = metafunc.definition.get_closest_marker("roles")
    roles = set(marker.args) if marker else None
    hosts = [h for h in inv["hosts"] if roles is None or h["role"] in roles]
    metafunc.parametrize("host_entry", hosts, ids=[h["name"] for h in hosts], scope="module")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "roles(*roles): run only on hosts of these roles")


_HOSTS: dict[str, Any] = {}


@pytest.fixture(scope="session")
def _ssh_control_dir(pytestconfig: pytest.Config) -> Iterator[Path]:
    """A private directory for OpenSSH connection sharing: testinfra asks for ControlMaster but
    names no ControlPath, so without one every command would open a new connection (two
    handshakes through the bastion). The masters are closed at the end of the session."""
    path = Path(tempfile.mkdtemp(prefix="verify-ssh-"))
    yield path
    ssh_config = _paths(pytestconfig)[1]
    for name in list(_HOSTS):
        subprocess.run(["ssh", "-F", str(ssh_config), "-o", f"ControlPath={path}/{name}",
                        "-O", "exit", name], capture_output=True, timeout=30, check=False)
    _HOSTS.clear()
    shutil.rmtree(path, ignore_errors=True)


def _connect(config: pytest.Config, control_dir: Path, name: str) -> Any:
    if name not in _HOSTS:
        ssh_config = _paths(config)[1]
        _HOSTS[name] = testinfra.get_host(f"ssh://{name}", ssh_config=str(ssh_config),
                                          sudo=True, controlpath=str(control_dir / name))
    return _HOSTS[name]


@pytest.fixture(scope="module")
def host(host_entry: dict[str, Any], pytestconfig: pytest.Config,
         _ssh_control_dir: Path) -> Any:
    """A testinfra host (sudo to root) for the parametrized inventory host, one per session."""
    return _connect(pytestconfig, _ssh_control_dir, host_entry["name"])


@pytest.fixture(scope="session")
def host_named(pytestconfig: pytest.Config, _ssh_control_dir: Path) -> Callable[[str], Any]:
    """Another inventory host by name (sudo to root): the checks that look at a host from
    outside (the firewall probes, nginx reached as the proxy reaches it)."""
    return lambda name: _connect(pytestconfig, _ssh_control_dir, name)
