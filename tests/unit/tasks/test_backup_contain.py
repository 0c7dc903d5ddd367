"""tasks/backup_contain.py: `fab backup.contain` (issue 19)."""
from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from engine import ca_admin
from sshtrust import ca
from tasks.backup_contain import ContainError, backup_serials, parse_since, storage_argv


def test_backup_serials_every_certificate_of_the_principal_from_the_register(
        tmp_path: Path) -> None:
    ca_admin.create(tmp_path, "lab")
    user_ca = ca_admin.paths(tmp_path)["user_ca"]
    serials = []
    for name, principal in (("a", "backup-villeparisis"), ("b", "sysadmin"),
                            ("c", "backup-villeparisis")):
        key = tmp_path / name
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
        ca.sign_user_key(user_ca, Path(f"{key}.pub"), f"test-{name}", [principal],
                         ttl=timedelta(hours=1))
        serials.append(ca.issued(user_ca)[-1].serial)
    assert backup_serials(tmp_path, "backup-villeparisis") == [serials[0], serials[2]]


def test_storage_argv_runs_as_the_sites_storage_user_without_secrets() -> None:
    argv = storage_argv("participation", "backup.rekey", "--new-password-file", "/x/p")
    assert argv[:3] == ["runuser", "-u", "backup-participation"]
    assert argv[-2:] == ["--new-password-file", "/x/p"] and "backup.rekey" in argv
    assert "--site" in argv and argv[argv.index("--site") + 1] == "participation"


@pytest.mark.parametrize("text", ["2026-03-01", "yesterday"])
def test_parse_since_a_day_or_garbage_names_the_option(text: str) -> None:
    with pytest.raises(ContainError, match="--since"):
        parse_since(text, "Europe/Paris")


def test_parse_since_local_time_gets_the_policy_zone() -> None:
    assert parse_since("2026-03-01T10:00", "Europe/Paris").utcoffset() == timedelta(hours=1)
