"""The safety snapshot a restore takes before it touches anything (issue 11, R-INC-1).

The site's current state, database and files, saved into the LOCAL repository exactly as the
nightly runner saves a night (the same restic command lines, backup.restic; the runner's own
dump command, backup.take.dump_under_sum, whose last line records the dump's sha256; the files
snapshot tagged with the host's ids digest; both at once), with the writers already stopped
so both halves agree. Tagged `safety`
and `safety-expires=<date>` (backup.tags): the rotation never counts it as a daily, weekly or
monthly, never copies it to A or B, and the local rotation forgets it from that date on.

Restoring it is an ordinary restore of the pair by id:
    fab restore --site S --from local --snapshot <id>
Standard library only (runs on the hosts).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from backup.config import SiteBackup
from backup.records import cached_listing, ids_tag, save_listing
from backup.restic import ResticError, parse_summary
from backup.tags import SAFETY_KEEP_DAYS, safety_tags
from backup.take import KIND_FILES, db_tags, dump_under_sum


class SafetyError(RuntimeError):
    pass


def go_back_command(site: str, snapshot_id: str) -> str:
    return f"fab restore --site {site} --from local --snapshot {snapshot_id[:8]}"


def _backup(cfg: SiteBackup, argv: list[str], what: str) -> dict[str, Any]:
    return parse_summary(cfg.restic.run(argv, what).stdout)


def take(cfg: SiteBackup, when: datetime, keep_days: int = SAFETY_KEEP_DAYS,
         also_exclude: Sequence[str] = ()) -> dict[str, Any]:
    """Database and files into the local repository at once; both or neither (the half that
    succeeded is forgotten again when the other fails). Returns ids, sizes and the command
    that goes back to it. Raises SafetyError naming every failure.

    `also_exclude`: patterns left out of the files half besides the runner's own (the
    restore's side directories, filled meanwhile: they are no part of the live state)."""
    when = when.replace(microsecond=0)  # restic keeps whole seconds of --time
    tags = safety_tags(cfg.policy.local_date(when), keep_days)
    listing = cached_listing(cfg.state_dir, cfg.local.location)
    restic = cfg.restic
    safety_db_tags, files_tags = db_tags(tags), [*tags, *ids_tag(), KIND_FILES]
    db_argv = restic.backup_command_argv(cfg.local, dump_under_sum(cfg), cfg.dump_filename,
                                         safety_db_tags, cfg.host, when)
    files_argv = restic.backup_paths_argv(cfg.local, cfg.paths, [*cfg.excludes, *also_exclude],
                                          files_tags, cfg.host, when)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="safety") as pool:
        jobs = {"database": pool.submit(_backup, cfg, db_argv, "safety snapshot of the database"),
                "files": pool.submit(_backup, cfg, files_argv, "safety snapshot of the files")}
    done, errors = {}, []
    for name, job in jobs.items():
        try:
            done[name] = job.result()
        except (ResticError, ValueError) as error:
            errors.append(f"safety snapshot of the {name} failed: {error}")
    if errors:
        taken = [s["snapshot_id"] for s in done.values()]
        if taken:
            try:
                restic.run(restic.forget_argv(cfg.local, taken, prune=False),
                           "forget the safety snapshot's lone half")
            except ResticError as error:
                errors.append(f"its other half {taken[0][:8]} stays: {error}")
        raise SafetyError("; ".join(errors) + " (nothing touched)")
    db, files = done["database"], done["files"]
    entries = [
        {"id": db["snapshot_id"], "time": when.isoformat(), "tags": safety_db_tags,
         "hostname": cfg.host},
        {"id": files["snapshot_id"], "time": when.isoformat(), "tags": files_tags,
         "hostname": cfg.host},
    ]
    if listing is not None:
        # The runner's kept listing stays exact (it would otherwise be re-listed by restic).
        save_listing(cfg.state_dir, cfg.local.location, [*listing, *entries])
    return {
        "db": db["snapshot_id"], "files": files["snapshot_id"], "time": when.isoformat(),
        "expires": tags[1].split("=", 1)[1],
        "db_bytes": db.get("total_bytes_processed"),
        "files_bytes": files.get("total_bytes_processed"),
        "added_bytes": (db.get("data_added") or 0) + (files.get("data_added") or 0),
        "go_back": go_back_command(cfg.site, files["snapshot_id"]),
    }
