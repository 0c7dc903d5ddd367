"""engine.access: Credentials.settings (every converge that includes the baseline pushes the
user KRL this machine holds: a restored host once kept its empty first-boot KRL, CI, stop 7),
and where the credentials come from: --identity/--ca-dir, else the inventory's ssh.identity /
ssh.ca_dir (the lab's), else $HOSTING_SSH_IDENTITY / $HOSTING_CA_DIR, else ~ (issue 12: no lab
import, the lab's inventory says where its access lives)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.access import AccessError, Credentials, credentials, resolve_ca_dir
from engine.inventory import Inventory


def creds(tmp_path: Path) -> Credentials:
    return Credentials(tmp_path / "id", tmp_path / "id-cert.pub", tmp_path)


def test_settings_with_a_krl_carries_its_bytes(tmp_path: Path) -> None:
    (tmp_path / "user_ca.krl").write_bytes(b"SSHKRL\n\x00revoked")
    assert creds(tmp_path).settings().user_krl == b"SSHKRL\n\x00revoked"


def test_settings_without_a_krl_leaves_the_hosts_one(tmp_path: Path) -> None:
    assert creds(tmp_path).settings().user_krl is None


def test_settings_with_the_inventory_carry_the_internal_tls_leaves(tmp_path: Path,
                                                                  prod: Inventory) -> None:
    """Every converge gets the proxy -> web certificates, not only `fab deploy`'s: a restore
    onto a fresh web host converges it, and its nginx cannot load without them (issue 19)."""
    from engine import tls_ca

    assert creds(tmp_path).settings(prod).internal_tls is None  # no internal CA here
    tls_ca.create(tmp_path, "prod")
    internal = creds(tmp_path).settings(prod).internal_tls
    assert internal is not None
    assert creds(tmp_path).settings().internal_tls is None  # without the inventory: none


def key_with_cert(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("private\n")
    path.with_name(path.name + "-cert.pub").write_text("cert\n")
    return path


def with_paths(inv: Inventory, ca_dir: Path, identity: Path) -> Inventory:
    doc = json.loads(json.dumps(inv.doc))
    doc["ssh"].update(ca_dir=str(ca_dir), identity=str(identity))
    return Inventory.from_doc(doc)


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("HOSTING_SSH_IDENTITY", raising=False)
    monkeypatch.delenv("HOSTING_CA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_credentials_inventory_paths_used(prod: Inventory, tmp_path: Path, no_env: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    key = key_with_cert(tmp_path / "lab/user/id_ed25519")
    key_with_cert(tmp_path / "env/id")
    monkeypatch.setenv("HOSTING_SSH_IDENTITY", str(tmp_path / "env/id"))
    monkeypatch.setenv("HOSTING_CA_DIR", str(tmp_path / "envca"))
    got = credentials("lab", inv=with_paths(prod, tmp_path / "lab/ca", key))
    assert got == Credentials(key, tmp_path / "lab/user/id_ed25519-cert.pub", tmp_path / "lab/ca")


def test_credentials_arguments_win_over_inventory(prod: Inventory, tmp_path: Path,
                                                  no_env: Path) -> None:
    lab_key = key_with_cert(tmp_path / "lab/id")
    mine = key_with_cert(tmp_path / "mine/id")
    got = credentials("lab", str(mine), str(tmp_path / "myca"),
                      inv=with_paths(prod, tmp_path / "lab/ca", lab_key))
    assert (got.user_key, got.ca_dir) == (mine, tmp_path / "myca")


def test_credentials_inventory_without_paths_uses_environment(
        prod: Inventory, tmp_path: Path, no_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = key_with_cert(tmp_path / "env/id")
    monkeypatch.setenv("HOSTING_SSH_IDENTITY", str(key))
    monkeypatch.setenv("HOSTING_CA_DIR", str(tmp_path / "cas"))
    got = credentials("prod", inv=prod)
    assert (got.user_key, got.user_cert, got.ca_dir) == (
        key, tmp_path / "env/id-cert.pub", tmp_path / "cas/prod")


def test_credentials_nothing_set_uses_home(prod: Inventory, no_env: Path) -> None:
    key = key_with_cert(no_env / ".ssh/id_ed25519")
    got = credentials("preprod", inv=prod)
    assert (got.user_key, got.ca_dir) == (key, no_env / ".local/share/hosting/ca/preprod")


def test_credentials_missing_certificate_names_it(prod: Inventory, tmp_path: Path,
                                                  no_env: Path) -> None:
    key = tmp_path / "lab/id"
    with pytest.raises(AccessError, match=f"no user certificate {key}-cert.pub"):
        credentials("lab", inv=with_paths(prod, tmp_path / "ca", key))


def test_resolve_ca_dir_lab_without_inventory_refused(no_env: Path) -> None:
    with pytest.raises(AccessError, match="ssh.ca_dir"):
        resolve_ca_dir("lab")


def test_resolve_ca_dir_inventory_names_none_uses_default(prod: Inventory, no_env: Path) -> None:
    assert resolve_ca_dir("prod", inv=prod) == no_env / ".local/share/hosting/ca/prod"
