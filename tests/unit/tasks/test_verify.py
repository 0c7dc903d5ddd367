"""tasks.verify (`fab verify`): the files testinfra's OpenSSH needs, from an inventory,
read back with OpenSSH's own parser (`ssh -G`: no connection is made)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from engine.access import Credentials
from engine.inventory import Inventory
from tasks.verify import SUITE, pytest_argv, write_access_files


def effective(config: Path, host: str) -> dict[str, str]:
    if shutil.which("ssh") is None:
        pytest.skip("no OpenSSH client (scripts/install-system-deps installs it)")
    out = subprocess.run(["ssh", "-F", str(config), "-G", host], capture_output=True,
                         text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


@pytest.fixture
def creds(tmp_path: Path) -> Credentials:
    return Credentials(tmp_path / "id_ed25519", tmp_path / "id_ed25519-cert.pub", tmp_path / "ca")


def test_write_access_files_private_host_is_reached_through_the_bastion(
        prod: Inventory, creds: Credentials, tmp_path: Path) -> None:
    _inv, config = write_access_files(dict(prod.doc), creds, tmp_path / "out")
    web, ops = prod.host("web-villeparisis"), prod.host("ops")
    seen = effective(config, "web-villeparisis")
    assert (seen["hostname"], seen["proxyjump"], seen["hostkeyalias"]) == (
        web.private_ip, "ops", "web-villeparisis")
    assert seen["user"] == prod.doc["ssh"]["login_user"]
    assert (seen["passwordauthentication"], seen["stricthostkeychecking"]) == ("no", "true")
    bastion = effective(config, "ops")
    assert bastion["hostname"] == ops.public_ip and "proxyjump" not in bastion


def test_write_access_files_known_hosts_trusts_only_the_inventory_host_ca(
        prod: Inventory, creds: Credentials, tmp_path: Path) -> None:
    write_access_files(dict(prod.doc), creds, tmp_path / "out")
    lines = (tmp_path / "out" / "known_hosts").read_text().splitlines()
    key = " ".join(prod.host_ca_public_key.split()[:2])
    assert lines == [f"@cert-authority * {key}"]
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o700


def test_write_access_files_host_krl_checked_only_when_held(
        prod: Inventory, creds: Credentials, tmp_path: Path) -> None:
    _inv, config = write_access_files(dict(prod.doc), creds, tmp_path / "a")
    assert "revokedhostkeys" not in effective(config, "proxy")
    creds.ca_dir.mkdir()
    creds.host_krl.write_bytes(b"")
    _inv, config = write_access_files(dict(prod.doc), creds, tmp_path / "b")
    assert effective(config, "proxy")["revokedhostkeys"] == str(creds.host_krl)


def test_pytest_argv_select_becomes_a_k_expression(tmp_path: Path) -> None:
    argv = pytest_argv(tmp_path / "i.json", tmp_path / "c", "proxy and nginx")
    assert argv[argv.index(str(SUITE)) + 1:] == [
        "--inventory", str(tmp_path / "i.json"), "--ssh-config", str(tmp_path / "c"),
        "-k", "proxy and nginx"]
