"""The storage role (backup-a: daily, R-BKP-2; backup-b: long-term, R-BKP-3).

Per site: a Unix user owning the site's repository directory, an sshd principals file that
gives the site's backup certificate (principal backup-<site>) exactly one thing, the
repository served append-only by rclone (R-BKP-7), and a daily timer that rotates the
repository with our policy and reads a 1/28 data subset (`backup.rotate`).

The repository itself is created by the web host through that append-only access
(`restic init --copy-chunker-params`, `fab backup.setup`); its password reaches this host
with `fab backup.setup` too (the rotation needs it: this host is trusted with the data).

Disk layout: everything under /srv/backups, on the block volume the model sizes
(storage.backup_*_volume_gb). Mounting that volume is the provisioning's job (cloud-init
on OVH); in the lab it is a plain directory.
"""
from __future__ import annotations

import json

from engine.render import render
from engine.resources import Directory, File, Handler, Packages, Resource, Service, User
from engine.role import Desired, HostContext
from model.bootstrap import PRINCIPALS_DIR, SSH_GROUP
from roles.backup import config
from roles.backup.layout import (
    PYTHON,
    RUNNER_DIR,
    STORAGE_CONFIG_DIR,
    STORAGE_ROOT,
    BackupLayout,
)
from roles.backup.role import DAEMON_RELOAD, runner_files, timezone

PURGE_DIR = f"{STORAGE_CONFIG_DIR}/purge"  # <site>.json: when its backups go (backup.decommission)
PURGE_UNIT = "hosting-backup-purge"


def site_resources(ctx: HostContext, site: str, tier: str) -> list[Resource]:
    lay = BackupLayout(site)
    inv = ctx.inventory
    user = lay.storage_user
    units = (DAEMON_RELOAD.name,)
    return [
        # A real shell: sshd runs the forced command through the user's shell. The account
        # has no password; only the principals file below lets anyone in, and only into rclone.
        User(user, lay.storage_home, shell="/bin/sh", groups=(SSH_GROUP,)),  # AllowGroups
        Directory(lay.storage_home, 0o700, user, user),
        Directory(lay.storage_state, 0o750, user, user),
        File(f"{PRINCIPALS_DIR}/{user}", render("storage/principals.j2", layout=lay), 0o644),
        File(lay.storage_config, json.dumps(config.storage_config(inv, site, tier), indent=2)
             + "\n", 0o640, "root", user),
        File(f"/etc/systemd/system/{lay.storage_unit}.service",
             render("storage/rotate.service.j2", layout=lay, runner_dir=RUNNER_DIR,
                    python=PYTHON), notify=units),
        File(f"/etc/systemd/system/{lay.storage_unit}.timer",
             render("storage/rotate.timer.j2", layout=lay,
                    time=config.rotation_time(inv, site), timezone=timezone(ctx)),
             notify=units),
        Service(f"{lay.storage_unit}.timer", enabled=True, running=True),
    ]


def purge_resources(ctx: HostContext) -> list[Resource]:
    """The daily purge of decommissioned sites' backups at their expiry (`fab decommission`
    schedules it in PURGE_DIR, backup/decommission.py runs it; R-GDPR-8): this host's own
    timer, so no web host and no admin machine has to be there on the day."""
    units = (DAEMON_RELOAD.name,)
    return [
        Directory(PURGE_DIR, 0o700),
        File(f"/etc/systemd/system/{PURGE_UNIT}.service",
             render("storage/purge.service.j2", runner_dir=RUNNER_DIR, python=PYTHON),
             notify=units),
        File(f"/etc/systemd/system/{PURGE_UNIT}.timer",
             render("storage/purge.timer.j2", timezone=timezone(ctx)), notify=units),
        Service(f"{PURGE_UNIT}.timer", enabled=True, running=True),
    ]


def storage(ctx: HostContext) -> Desired:
    tier = ctx.host.tier
    if ctx.host.role != "storage" or tier not in ("a", "b"):
        return Desired()
    resources: list[Resource] = [
        Packages(("restic", "rclone")),
        *runner_files(),
        Directory(STORAGE_ROOT, 0o755),
        Directory(STORAGE_CONFIG_DIR, 0o755),
    ]
    for s in ctx.inventory.sites:
        resources += site_resources(ctx, s.name, tier)
    resources += purge_resources(ctx)
    handlers: list[Handler] = [DAEMON_RELOAD]
    return Desired(tuple(resources), tuple(handlers))
