"""`fab backup.setup` re-signing a site's backup key revokes the certificate it replaces (issue
16, R-GDPR-5, R-BKP-7): before, the old one stayed valid for the storage servers until it
expired (90 days). Real ssh-keygen: a throwaway user CA signs, the KRL is ssh-keygen's."""
from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine import ca_admin
from tasks import backup_setup
from tasks.backup_setup import previous_serial, revoke_and_push
from tests.unit.conftest import make_inventory


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ca"
    ca_admin.create(d, "lab")
    return d


def backup_cert(ca_dir: Path, tmp_path: Path, name: str = "id") -> Path:
    key = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    inv = make_inventory("prod")
    from roles.backup.layout import BackupLayout

    text = backup_setup.sign(ca_dir, "lab", BackupLayout("villeparisis"),
                             inv.host("web-villeparisis"), Path(f"{key}.pub").read_text())
    cert = tmp_path / f"{name}-cert.pub"
    cert.write_text(text)
    return cert


def serial_of(cert: Path) -> int:
    out = subprocess.run(["ssh-keygen", "-L", "-f", str(cert)], capture_output=True, text=True,
                         check=True).stdout
    return int(next(line for line in out.splitlines() if "Serial:" in line).split()[-1])


def test_previous_serial_valid_certificate_of_this_ca_returned(ca_dir: Path,
                                                               tmp_path: Path) -> None:
    cert = backup_cert(ca_dir, tmp_path)
    assert previous_serial(cert.read_text(), ca_dir, datetime.now(UTC)) == serial_of(cert)


def test_previous_serial_expired_certificate_none(ca_dir: Path, tmp_path: Path) -> None:
    cert = backup_cert(ca_dir, tmp_path)
    later = datetime.now(UTC) + backup_setup.CERT_TTL + timedelta(days=1)
    assert previous_serial(cert.read_text(), ca_dir, later) is None


def test_previous_serial_other_ca_none(ca_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    ca_admin.create(other, "lab")
    cert = backup_cert(other, tmp_path)  # its serial 1 would name this CA's own serial 1
    assert previous_serial(cert.read_text(), ca_dir, datetime.now(UTC)) is None


def test_previous_serial_no_or_unreadable_certificate_none(ca_dir: Path) -> None:
    assert previous_serial("", ca_dir, datetime.now(UTC)) is None
    assert previous_serial("ssh-ed25519-cert-v01@openssh.com AAAA garbage", ca_dir,
                           datetime.now(UTC)) is None


def test_revoke_and_push_serial_revoked_and_krl_sent_to_every_host(
        ca_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = backup_cert(ca_dir, tmp_path, "old"), backup_cert(ca_dir, tmp_path, "new")
    inv = make_inventory("prod")
    pushed: dict[str, Any] = {}

    def fake_converge(inv_: Any, _access: Any, hosts: list[Any], role: Any, settings: Any,
                      **_kw: Any) -> Any:
        pushed["hosts"] = [h.name for h in hosts]
        pushed["files"] = role(None).resources
        pushed["settings"] = settings
        return type("R", (), {"ok": True, "results": []})()

    monkeypatch.setattr(backup_setup, "converge_hosts", fake_converge)
    revoke_and_push(inv, lambda: None, ca_dir, serial_of(old))
    krl = ca_admin.paths(ca_dir)["user_krl"]
    from sshtrust import ca

    assert ca.is_revoked(krl, old) and not ca.is_revoked(krl, new)
    assert pushed["hosts"] == [h.name for h in inv.hosts]
    assert pushed["files"][0].content == krl.read_bytes() == pushed["settings"].user_krl


def test_revoke_and_push_failed_host_named(ca_dir: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    old = backup_cert(ca_dir, tmp_path)
    result = type("H", (), {"ok": False, "host": "backup-a", "error": "timed out",
                            "outcomes": []})()
    monkeypatch.setattr(backup_setup, "converge_hosts", lambda *a, **k: type(
        "R", (), {"ok": False, "results": [result]})())
    with pytest.raises(backup_setup.SetupError, match="backup-a: timed out.*ca.push-krl"):
        revoke_and_push(make_inventory("prod"), lambda: None, ca_dir, serial_of(old))
