"""The role registry (roles/registry.py): which roles each inventory role gets, the baseline
everywhere and the backup side on the web and storage hosts."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.role import HostContext
from roles.registry import desired

ALL = ("proxy", "ops", "web-villeparisis", "web-participation", "backup-a", "backup-b")


def test_registry_every_inventory_role_gets_the_baseline(
        ctx_for: Callable[..., HostContext]) -> None:
    for host in ALL:
        keys = {r.key for r in desired(ctx_for(host)).resources}
        assert {"file:/etc/ssh/sshd_config", "file:/etc/nftables.conf"} <= keys


@pytest.mark.parametrize("host, unit", [
    ("web-villeparisis", "file:/etc/systemd/system/hosting-backup-villeparisis.timer"),
    ("backup-a", "file:/etc/systemd/system/hosting-backup-rotate-participation.timer"),
    ("backup-b", "file:/etc/systemd/system/hosting-backup-rotate-villeparisis.timer")])
def test_registry_web_and_storage_hosts_carry_their_backup_side(
        ctx_for: Callable[..., HostContext], host: str, unit: str) -> None:
    """`fab deploy` converges the backup runner and the storage rotation too (R-BKP-1..3), so
    a changed backup time reaches the timers and a second deploy checks them."""
    assert unit in {r.key for r in desired(ctx_for(host)).resources}


def test_registry_proxy_and_ops_carry_no_backup_timer(
        ctx_for: Callable[..., HostContext]) -> None:
    for host in ("proxy", "ops"):
        assert not [r.key for r in desired(ctx_for(host)).resources if "hosting-backup" in r.key]
