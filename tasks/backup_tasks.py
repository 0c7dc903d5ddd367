"""`fab backup.setup`, `fab backup.status`, `fab backup.run`, `fab backup.contain` and
`fab restore` (issues 6, 19).

fabfile.py registers them: `Collection.from_module(tasks.backup_tasks, name="backup")` and
the `restore` task at the top level (docs/backups.md).
"""
from __future__ import annotations

import json

from invoke import task
from invoke.exceptions import Exit

from engine.access import AccessError
from engine.inventory import InventoryError
from tasks.backup_contain import ContainError, run_contain
from tasks.backup_restore import RestoreTaskError, run_restore
from tasks.backup_setup import SetupError, run_setup
from tasks.backup_status import run_status

ENV_HELP = "lab | prod | preprod (default lab)"
COMMON = {"env": ENV_HELP, "inventory": "inventory JSON file",
          "identity": "your key (with KEY-cert.pub)"}


@task(help={**COMMON, "sites": "comma-separated sites (default: all)",
            "ca-dir": "CA directory (signs the web hosts' backup keys)"})
def setup(c, env="lab", sites="", inventory="", identity="", ca_dir=""):
    """Backup chain: roles on web + storage hosts, certificates, passwords, repositories."""
    try:
        run_setup(env, sites, inventory, identity, ca_dir)
    except (InventoryError, AccessError, SetupError) as exc:
        raise Exit(f"backup.setup: {exc}", code=1) from exc


@task(help={**COMMON, "site": "the site whose web host was compromised (required)",
            "since": "the suspected compromise (ISO time): snapshots that arrived on A or B "
                     "since then are marked suspect",
            "ca-dir": "CA directory (revokes the old backup certificate, signs the new one)"})
def contain(c, site="", since="", env="lab", inventory="", identity="", ca_dir=""):
    """After a compromise: revoke the site's backup identity, new keys and password on A and B
    (every other key removed), suspect arrivals marked, a new identity for the rebuilt host."""
    if not site:
        raise Exit("backup.contain: --site is required", code=2)
    try:
        result = run_contain(env, site, since, inventory, identity, ca_dir)
    except (InventoryError, AccessError, SetupError, ContainError) as exc:
        raise Exit(f"backup.contain: {exc}", code=1) from exc
    print(json.dumps(result, indent=2, sort_keys=True))


@task(help=COMMON)
def status(c, env="lab", inventory="", identity=""):
    """Every site's tiers: snapshot counts, newest and oldest ages, sizes, last runs."""
    try:
        run_status(env, inventory, identity)
    except (InventoryError, AccessError) as exc:
        raise Exit(f"backup.status: {exc}", code=1) from exc


@task(help={**COMMON, "site": "site name (required)",
            "at": "YYYY-MM-DD (newest backup of that day or before) or an ISO time",
            "snapshot": "the backup whose database or files snapshot id starts with this "
                        "(8+ hex digits): how a restore's safety snapshot is restored",
            "from": "local | a | b (default a: survives the loss of the web host)",
            "to": "host to restore onto: only the site's own web host (default), e.g. "
                  "re-created empty after an incident",
            "stage-config": "restore the snapshot's host configuration beside the live one "
                            "and list the differences",
            "apply-config": "also put the restorable part of the snapshot's host configuration "
                            "in place (never secrets nor user/group ids of the old host)",
            "redump": "also verify the database by a new dump of it (slower)",
            "before": "after a compromise: the newest genuine backup that ARRIVED on A or B "
                      "before this time (ISO, with the suspected compromise's time)",
            "allow-suspect": "take this snapshot although the storage server's ledger holds "
                             "it suspect (8+ hex digits; repeat for both halves)",
            "ca-dir": "CA directory (certifies a fresh host's backup key)"},
      iterable=["allow_suspect"], name="restore")
def restore(c, site="", at="", from_="a", to="", apply_config=False, env="lab", inventory="",
            identity="", ca_dir="", stage_config=False, redump=False, snapshot="", before="",
            allow_suspect=None):
    """Restore a site from a backup (safety snapshot first, maintenance page meanwhile)."""
    if not site:
        raise Exit("restore: --site is required", code=2)
    try:
        result = run_restore(env, site, at, from_, to, apply_config, inventory, identity, ca_dir,
                             stage_config=stage_config, redump=redump, snapshot=snapshot,
                             before=before, allow_suspect=tuple(allow_suspect or ()))
    except (InventoryError, AccessError, SetupError, RestoreTaskError) as exc:
        raise Exit(f"restore: {exc}", code=1) from exc
    print(json.dumps(result, indent=2, sort_keys=True))
    if not result["ok"]:
        raise Exit(f"restore of {site} FAILED: {'; '.join(result['errors']) or 'see above'}; "
                   f"it stays in maintenance", code=1)
