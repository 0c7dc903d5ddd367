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


@pytest.mark.parametrize("host", ALL)
def test_registry_every_account_with_principals_is_in_the_ssh_group(
        ctx_for: Callable[..., HostContext], host: str) -> None:
    """sshd's AllowGroups refuses an account outside the group whatever its principals file
    says: each role that lets an account in must also put it in the group."""
    from engine.primitives.user import User
    from model.bootstrap import PRINCIPALS_DIR, SSH_GROUP

    ctx = ctx_for(host)
    res = desired(ctx).resources
    accounts = {r.key.removeprefix(f"file:{PRINCIPALS_DIR}/") for r in res
                if r.key.startswith(f"file:{PRINCIPALS_DIR}/")}
    in_group = {r.name for r in res if isinstance(r, User) and SSH_GROUP in r.groups}
    in_group |= {r.key.removeprefix("check:ssh-group-") for r in res
                 if r.key.startswith("check:ssh-group-")}
    assert accounts and accounts <= in_group, accounts - in_group
