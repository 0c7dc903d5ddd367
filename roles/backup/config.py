"""The runner's configuration files (JSON), built from the inventory: pure, tested as data.

What a site's backup holds (R-BKP-8): the database dump (a separate snapshot, through
`restic backup --stdin-from-command`), the site's tree (code releases, public files, the
plaintext view of the encrypted private files, config sync), and the host's configuration
(nginx, PHP, MariaDB, the systemd units of the site's cron and services, the stack's own
/etc/hosting, users and groups so a restore can map file owners by name).
Never logs (R-GDPR-11): /var/log is not backed up, `*.log` files and Drupal's log table
(watchdog: structure only) are left out, and so are sessions, temp files and caches.
"""
from __future__ import annotations

from typing import Any

from engine.inventory import Inventory
from model.bootstrap import HOST_KRL
from roles.backup.layout import CACHE_DIR, BackupLayout
from roles.web.layout import PHP_VERSION, SiteLayout
from roles.web.site import db_credentials

# Drupal's database log (dblog): its rows are logs (R-GDPR-11); the table itself is kept so
# a restored site still works.
LOG_TABLES = ("watchdog",)
RESTORE_SUBPATHS = ("releases", "current", "shared/files", "shared/config", "private")
HOST_CONFIG = ("/etc/hosting", "/etc/nginx", "/etc/php", "/etc/mysql", "/etc/systemd/system",
               "/etc/passwd", "/etc/group")


def site_paths(site: str) -> tuple[list[str], list[str], list[str]]:
    """(paths, excludes, required mounts) of a site's files snapshot."""
    web = SiteLayout(site)
    paths = [web.root, *HOST_CONFIG]
    excludes = [
        "/var/log", "*.log",  # R-GDPR-11
        web.tmp, web.sessions, web.incoming,  # transient; sessions hold personal data
        web.php_storage,  # compiled Twig: regenerated
        web.private_cipher,  # the ciphertext: its plaintext view is backed up instead
        "/etc/hosting/backup",  # the backup identity and password belong to the host
    ]
    return paths, excludes, [web.private_files]


def runner_config(inventory: Inventory, site: str) -> dict[str, Any]:
    """/etc/hosting/backup/<site>.json on the site's web host."""
    s = inventory.site(site)
    lay = BackupLayout(site)
    paths, excludes, mounts = site_paths(site)
    remote = {"location": f"rclone:{site}", "ssh_config": lay.ssh_config}
    return {
        "site": site,
        "host": s.host,
        "policy": inventory.backup_policy,
        "restic": {"binary": "/usr/bin/restic", "cache_dir": CACHE_DIR},
        "password_file": lay.password,
        "repositories": {
            "local": {"location": lay.local_repo},
            "a": {**remote, "ssh_alias": "backup-a"},
            "b": {**remote, "ssh_alias": "backup-b"},
        },
        "database": {"name": s.database, "option_file": db_credentials(s),
                     "log_tables": list(LOG_TABLES)},
        "paths": paths,
        "excludes": excludes,
        "required_mounts": mounts,
        "state_dir": lay.state,
        "lock_file": lay.lock,
        "restore": {
            "root": SiteLayout(site).root,
            # Never private.enc (the ciphertext), tmp, sessions or incoming: --delete there
            # would destroy what the backup leaves out on purpose.
            "subpaths": list(RESTORE_SUBPATHS),
            "stop_units": [f"php{PHP_VERSION}-fpm.service",
                           f"{SiteLayout(site).cron_unit}.timer"],
        },
    }


def storage_config(inventory: Inventory, site: str, tier: str) -> dict[str, Any]:
    """/etc/hosting/backup-storage/<site>.json on backup-a (tier a) or backup-b (tier b)."""
    s = inventory.site(site)
    lay = BackupLayout(site)
    return {
        "site": site,
        "tier": tier,
        "host": s.host,
        "policy": inventory.backup_policy,
        "restic": {"binary": "/usr/bin/restic", "cache_dir": f"{lay.storage_home}/.cache"},
        "repository": lay.storage_repo,
        "password_file": lay.storage_password,
        "state_dir": lay.storage_state,
        "lock_file": f"{lay.storage_state}/rotate.lock",
        "check_subsets": 28,
        # What the runner writes (backup.suspect): a snapshot claiming other paths is suspect.
        "expect": {"paths": {"files": site_paths(site)[0], "db": [f"/{site}.sql"]}},
        # The site's space limit on this server, enforced by the forced command (backup.serve).
        **({"quota_gb": inventory.site_quota_gb} if inventory.site_quota_gb else {}),
    }


def ssh_config(inventory: Inventory, site: str) -> str:
    """The web host's SSH client configuration for its pushes to A and B (R-BKP-7)."""
    from engine.render import render

    lay = BackupLayout(site)
    tiers = [(alias, inventory.storage_host(t).private_ip) for t, alias in (("a", "backup-a"),
                                                                             ("b", "backup-b"))]
    return render("backup/ssh_config.j2", layout=lay, tiers=tiers, host_krl=HOST_KRL)


def rotation_time(inventory: Inventory, site: str) -> str:
    """When the storage servers rotate a site: midday, one site every 20 minutes, far from
    the night's backups and copies (a prune holds an exclusive lock)."""
    minutes = 12 * 60 + 20 * inventory.sites.index(inventory.site(site))
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"
