"""Steps 2-3 of the nightly backup (backup/run.py): the night's two snapshots, taken at once
into the local repository: the database dump (under backup.dumpsum, which ends it with a line
recording its sha256) and the files. A backup is both snapshots or neither: if either fails,
the other's is forgotten again (R-BKP-8). Also what marks the runner's own snapshots (their
kind tag) and picks them out of a listing (`series`)."""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from backup.config import SiteBackup
from backup.records import DUMP_TRAILER, ids_tag
from backup.restic import EXIT_INCOMPLETE, ResticError, parse_summary
from backup.status import RunRecord
from backup.tags import tags_for_new_snapshot

# Every snapshot the runner takes carries one of these: the series the rotation sees.
KIND_DB = "db"
KIND_FILES = "files"
KINDS = (KIND_DB, KIND_FILES)


def series(snapshots: list[dict[str, Any]], host: str) -> list[dict[str, Any]]:
    """The site's own backups: taken by this runner (a kind tag) for this site's host.

    Anything else in the repository (a manual `restic backup`) must not count as the first
    snapshot of a week or month (docs/backup-rotation.md) nor be rotated by our rules."""
    return [
        s
        for s in snapshots
        if s.get("hostname") == host and set(s.get("tags") or ()) & set(KINDS)
    ]


def _summary_entry(summary: dict[str, Any], when: datetime, tags: list[str],
                   host: str) -> dict[str, Any]:
    """A listing entry for a snapshot just taken (saves a second listing): `tags` exactly as
    given to restic."""
    return {
        "id": summary["snapshot_id"],
        "time": when.isoformat(),
        "tags": list(tags),
        "hostname": host,
    }


def take_backup(cfg: SiteBackup, record: RunRecord, local: list[dict[str, Any]],
                when: datetime) -> list[dict[str, Any]]:
    """Steps 2-3; returns the listing entries of the snapshots kept (none on failure)."""
    own = series(local, cfg.host)
    tags = tags_for_new_snapshot(own, when, cfg.policy)
    record.facts["tags"] = tags
    missing = [p for p in cfg.paths if not os.path.lexists(p)]
    if missing:
        # restic would only warn and save a snapshot without them (R-BKP-8: all or nothing).
        record.fail(f"paths to back up are missing: {', '.join(missing)}; no backup taken")
        return []
    for mount in cfg.required_mounts:
        # An unmounted gocryptfs view is an empty directory: backing it up would silently
        # record "no private files" (R-GDPR-1 data lives only there).
        if not os.path.ismount(mount):
            record.fail(f"{mount} is not mounted: private files unreadable; no backup taken")
            return []
    # The dump and the files at once: two restic processes overlap each other's key
    # derivation, reads and compression (docs/backups.md, bench). The dump's sha256 travels
    # in the dump itself (backup.dumpsum's trailer line), so the files need nothing from it.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="backup") as pool:
        db_job = pool.submit(_backup_database, cfg, record, tags, when)
        files_job = pool.submit(_backup_files, cfg, record, [*tags, *ids_tag()], when)
        db, files = db_job.result(), files_job.result()
    if db is None or files is None:
        # A backup is both snapshots or neither: withdraw the one that was taken.
        _withdraw(cfg, record, [s for s in (db, files) if s is not None])
        return []
    return [db, files]


def dump_under_sum(cfg: SiteBackup) -> list[str]:
    """The dump command as restic runs it: under backup.dumpsum, which ends the dump with a
    line recording its sha256.

    By path with this interpreter (restic's environment has no PYTHONPATH); -I -S: nothing
    from the environment or site-packages, only the standard library."""
    script = Path(__file__).resolve().with_name("dumpsum.py")
    return [sys.executable, "-I", "-S", str(script), "--", *cfg.database.dump_command()]


def db_tags(tags: list[str]) -> list[str]:
    """A database snapshot's tags: the night's, its kind, and the mark of its trailer line."""
    return [*tags, KIND_DB, DUMP_TRAILER]


def _backup_database(cfg: SiteBackup, record: RunRecord, tags: list[str],
                     when: datetime) -> dict[str, Any] | None:
    """The dump's snapshot entry (None when it failed: restic then kept no snapshot)."""
    try:
        with record.step("database") as step:
            argv = cfg.restic.backup_command_argv(
                cfg.local, dump_under_sum(cfg), cfg.dump_filename, db_tags(tags), cfg.host, when)
            proc = cfg.restic.run(argv, "database dump into the local repository")
            summary = parse_summary(proc.stdout)
            step.update(_sizes(summary))
            return _summary_entry(summary, when, db_tags(tags), cfg.host)
    except (ResticError, ValueError, OSError) as error:
        record.fail(f"database dump failed, no snapshot kept: {error}")
        return None


def _backup_files(cfg: SiteBackup, record: RunRecord, tags: list[str],
                  when: datetime) -> dict[str, Any] | None:
    try:
        with record.step("files") as step:
            argv = cfg.restic.backup_paths_argv(
                cfg.local, cfg.paths, cfg.excludes, [*tags, KIND_FILES], cfg.host, when)
            proc = cfg.restic.run(argv, "files into the local repository",
                                  ok_codes=(0, EXIT_INCOMPLETE))
            summary = parse_summary(proc.stdout)
            step.update(_sizes(summary))
            if proc.returncode == EXIT_INCOMPLETE:
                # The snapshot exists but lacks unreadable files: keep it (better than none),
                # and say so loudly.
                record.fail("files snapshot incomplete (some files could not be read): "
                            + _tail(proc.stderr))
            return _summary_entry(summary, when, [*tags, KIND_FILES], cfg.host)
    except (ResticError, ValueError) as error:
        record.fail(f"files backup failed: {error}")
        return None


def _withdraw(cfg: SiteBackup, record: RunRecord, taken: list[dict[str, Any]]) -> None:
    """Forget the night's lone snapshot: a backup is both snapshots or neither, so the
    tiers' "newest backup" (kept whatever its age) is always a whole one."""
    if not taken:
        return
    ids = [s["id"] for s in taken]
    try:
        with record.step("withdraw partial backup"):
            cfg.restic.run(cfg.restic.forget_argv(cfg.local, ids, prune=False),
                           "forget the partial backup")
    except ResticError as error:
        record.fail(f"could not forget the partial backup {ids}: {error}")


def _sizes(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("snapshot_id", "total_bytes_processed", "data_added", "data_added_packed",
            "files_new", "files_changed", "total_files_processed")
    return {k: summary[k] for k in keys if k in summary}


def _tail(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:])
