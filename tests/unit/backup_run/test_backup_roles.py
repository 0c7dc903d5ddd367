"""The backup and storage roles as data: configuration files, units, sshd principals, the
forced command shared by certificate and storage server; restore's choice of a backup."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from backup.config import parse
from backup.restore_choose import choose, parse_at
from backup.restore_db import RestoreError
from engine.inventory import Inventory
from roles.backup import config
from roles.backup.layout import BackupLayout

REPO = Path(__file__).resolve().parents[3]
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    from model import load_stack
    from model.inventory import HostAddresses, build_inventory
    from model.topology import plan_hosts, private_addresses

    stack = load_stack(REPO / "Pulumi.prod.yaml")
    addrs = private_addresses(stack)
    hosts = [HostAddresses(h.name, str(addrs[h.name]),
                           "198.51.100.20" if h.public else None) for h in plan_hosts(stack)]
    fp = "SHA256:" + "A" * 43
    return Inventory.from_doc(build_inventory(
        stack, source="lab", hosts=hosts,
        site_public_ips={s.name: str(s.public_ip) for s in stack.sites},
        host_key_fingerprints={h.name: fp for h in plan_hosts(stack)}))


def test_runner_config_is_valid_for_the_runner_itself(inventory: Inventory) -> None:
    for site in ("villeparisis", "participation"):
        data = config.runner_config(inventory, site)
        cfg = parse(json.loads(json.dumps(data)))
        assert cfg.host == f"web-{site}"
        assert cfg.a.ssh_alias == "backup-a" and cfg.b.ssh_alias == "backup-b"
        assert cfg.local.location == f"/var/backups/hosting/{site}/restic"
        assert cfg.database.option_file == f"/etc/hosting/{site}/db.cnf"
        assert f"--ignore-table-data={cfg.database.name}.watchdog" in cfg.database.dump_command()
        assert cfg.policy.weekly_day == 6 and cfg.policy.timezone == "Europe/Paris"


def test_backups_hold_site_and_config_but_never_logs_nor_secrets_of_the_backup(
        inventory: Inventory) -> None:
    data = config.runner_config(inventory, "villeparisis")
    assert "/srv/villeparisis" in data["paths"]
    assert {"/etc/nginx", "/etc/php", "/etc/mysql", "/etc/hosting"} <= set(data["paths"])
    assert "/var/log" in data["excludes"] and "*.log" in data["excludes"]  # R-GDPR-11
    assert "/etc/hosting/backup" in data["excludes"]
    assert "/srv/villeparisis/private.enc" in data["excludes"]
    assert data["required_mounts"] == ["/srv/villeparisis/private"]
    # restore --delete never reaches what the backup leaves out on purpose
    subs = data["restore"]["subpaths"]
    assert "private" in subs and not {"private.enc", "tmp", "sessions"} & set(subs)


def test_storage_config_and_rotation_times_are_spread(inventory: Inventory) -> None:
    a = config.storage_config(inventory, "villeparisis", "a")
    assert a["repository"] == "/srv/backups/villeparisis/repo" and a["tier"] == "a"
    assert a["quota_gb"] == inventory.site_quota_gb == 225  # 90 % of 500 GB, two sites
    times = {config.rotation_time(inventory, s.name) for s in inventory.sites}
    assert times == {"12:00", "12:20"}


def test_the_forced_command_is_append_only_on_the_sites_own_repository(
        inventory: Inventory) -> None:
    from backup.serve import server_argv
    from backup.storage_site import parse

    lay = BackupLayout("villeparisis")
    assert lay.forced_command().endswith("-m backup.serve --site villeparisis")
    served = server_argv(parse(config.storage_config(inventory, "villeparisis", "a")))
    assert "--append-only" in served and served[-1] == "/srv/backups/villeparisis/repo"
    assert lay.principal == "backup-villeparisis"


def test_principals_file_and_units_render(inventory: Inventory) -> None:
    from engine.render import render

    lay = BackupLayout("participation")
    text = render("storage/principals.j2", layout=lay)
    line = [x for x in text.splitlines() if not x.startswith("#")][0]
    assert line == f'restrict,command="{lay.forced_command()}" backup-participation'
    timer = render("backup/backup.timer.j2", layout=lay, time="03:45", timezone="Europe/Paris")
    assert "OnCalendar=*-*-* 03:45:00 Europe/Paris" in timer and "Persistent=true" in timer
    ssh = config.ssh_config(inventory, "participation")
    assert "HostName 10.20.0.20" in ssh and "HostName 10.20.0.21" in ssh
    assert "StrictHostKeyChecking yes" in ssh and "User backup-participation" in ssh


def test_cert_renewal_rules(inventory: Inventory) -> None:
    from tasks.backup_setup import needs_new_cert

    inv = inventory
    web = inv.host("web-villeparisis")
    lay = BackupLayout("villeparisis")
    now = datetime(2026, 1, 1, tzinfo=PARIS)
    assert needs_new_cert("", "ssh-ed25519 AAAA x", lay, web, now) == "no certificate"
    assert needs_new_cert("garbage", "ssh-ed25519 AAAA x", lay, web, now).startswith(
        "unreadable")


def snap(sid: str, when: str, *tags: str, host: str = "web-demo") -> dict:
    return {"id": sid, "time": when, "tags": list(tags), "hostname": host}


def test_restore_chooses_the_newest_complete_backup_before_the_date() -> None:
    snaps = [
        snap("d1", "2025-01-05T02:15:00Z", "db"), snap("f1", "2025-01-05T02:15:00Z", "files"),
        snap("d2", "2025-01-06T02:15:00Z", "db"), snap("f2", "2025-01-06T02:15:00Z", "files"),
        snap("d3", "2025-01-07T02:15:00Z", "db"),  # files missing: not a whole backup
        snap("x", "2025-01-08T02:15:00Z", "db", "files", host="other"),
    ]
    assert choose(snaps, "web-demo", None) == (snaps[2], snaps[3])
    at = parse_at("2025-01-05", PARIS)
    assert choose(snaps, "web-demo", at) == (snaps[0], snaps[1])
    with pytest.raises(RestoreError, match="no complete backup"):
        choose(snaps, "web-demo", parse_at("2025-01-04", PARIS))
    assert parse_at("2025-01-05T12:00", PARIS).tzinfo == PARIS


def test_status_table_shows_ages_sizes_and_flags_late_backups() -> None:
    from tasks.backup_status import table

    now = datetime(2026, 1, 10, 12, 0, tzinfo=PARIS)
    fresh = {"snapshots": 14, "bytes": 3 << 20, "oldest_time": "2026-01-04T03:15:00+01:00",
             "newest": {"time": "2026-01-10T03:15:00+01:00"}}
    old = {**fresh, "newest": {"time": "2026-01-07T03:15:00+01:00"}}
    data = {"villeparisis": {"web": {"tiers": {"local": fresh, "a": fresh, "b": old},
                                     "last_run": {"result": "ok", "finished": "x"}},
                             "a": {}, "b": {}}}
    lines = table(data, now)
    assert lines[0].split()[:3] == ["site", "tier", "snaps"]
    local = next(line for line in lines if line.split()[1] == "local")
    assert "9 h" in local and "3.0 MiB" in local and "LATE" not in local
    b = next(line for line in lines if line.split()[1] == "b")
    assert "3.4 d" in b and b.endswith("LATE")


def test_fab_tasks_are_importable_with_their_options() -> None:
    from tasks import backup_tasks as tasks

    assert tasks.restore.name == "restore"
    assert {"site", "at", "from_", "to"} <= set(tasks.restore.help) | {"from_"}
