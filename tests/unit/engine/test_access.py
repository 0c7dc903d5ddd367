"""engine.access.Credentials.settings: every converge that includes the baseline pushes the
user KRL this machine holds (a restored host once kept its empty first-boot KRL: CI, stop 7)."""
from __future__ import annotations

from pathlib import Path

from engine.access import Credentials


def creds(tmp_path: Path) -> Credentials:
    return Credentials(tmp_path / "id", tmp_path / "id-cert.pub", tmp_path)


def test_settings_with_a_krl_carries_its_bytes(tmp_path: Path) -> None:
    (tmp_path / "user_ca.krl").write_bytes(b"SSHKRL\n\x00revoked")
    assert creds(tmp_path).settings().user_krl == b"SSHKRL\n\x00revoked"


def test_settings_without_a_krl_leaves_the_hosts_one(tmp_path: Path) -> None:
    assert creds(tmp_path).settings().user_krl is None
