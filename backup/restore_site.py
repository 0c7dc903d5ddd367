"""The whole restore of one site (steps 1-9 of backup/restore.py): choose the backup, stop
the writers, take the safety snapshot WHILE the backup is restored beside the live site (side
database, side directories), verify, swap, finish; any failure leaves the live site as it was
(nothing swapped, or everything swapped back) with every error named (R-INC-1, issue 11)."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backup import restore_db, safety, swap
from backup.config import SiteBackup
from backup.records import (
    DUMP_SHA256,
    DUMP_TRAILER,
    IDS_SHA256,
    cached_listing,
    ids_digest,
    tag_value,
)
from backup.restic import ResticError
from backup.restore_choose import choose
from backup.restore_config import apply_config, staged_config
from backup.restore_db import RestoreError
from backup.restore_owners import remap_owners, stage_ids
from backup.restore_writers import start_writers, stop_writers
from backup.tags import SAFETY_KEEP_DAYS

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_VERIFY, EXIT_LOCKED = 0, 1, 2, 6, 75


def site_data_paths(cfg: SiteBackup) -> list[str]:
    root = cfg.restore_root
    return [f"{root}/{sub}" for sub in cfg.restore_subpaths]


def check_mounts(cfg: SiteBackup) -> None:
    for mount in cfg.required_mounts:
        if not os.path.ismount(mount):
            raise RestoreError(f"{mount} is not mounted: the private files would be written "
                               "outside the encrypted filesystem (R-GDPR-1); mount it first")


def restore_side(cfg: SiteBackup, repo_tier: str, snapshot_id: str, group: swap.Group,
                 token: str) -> dict[str, Any]:
    """One group of the site's data paths into its side directory (`restic restore --verify`
    reads back every file it wrote)."""
    argv = cfg.restic.restore_argv(cfg.repo(repo_tier), snapshot_id, group.side(token),
                                   list(group.paths))
    proc = cfg.restic.run(argv, f"restore files from {repo_tier} into {group.side(token)}")
    summary = [line for line in proc.stdout.splitlines() if line.startswith("Summary")]
    return {"includes": list(group.paths), "summary": summary[-1] if summary else ""}


def run_all(jobs: dict[str, Callable[[], Any]], workers: int = 8
            ) -> tuple[dict[str, Any], list[str]]:
    """Run the jobs at once; (results of those that succeeded, EVERY error "name: error")."""
    results: dict[str, Any] = {}
    errors: list[str] = []
    if not jobs:
        return results, errors
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except Exception as error:  # noqa: BLE001 - each is reported, none lost
                errors.append(f"{name}: {error}")
    return results, errors


class Failed(RuntimeError):
    """The restore stopped; `errors` lists every failure, `code` is the exit code."""

    def __init__(self, errors: list[str], code: int = 1) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
        self.code = code


def restore(cfg: SiteBackup, tier: str, at: datetime | None, apply_config_: bool,
            stage_config: bool = False, redump: bool = False,
            snapshot: str | Sequence[str] | None = None,
            safety_days: int = SAFETY_KEEP_DAYS) -> dict[str, Any]:
    """Steps 1-9; returns the result, `result["errors"]` empty on success. The result's
    `outcome` says where the live site is: "restored", "untouched" (nothing was changed),
    "swapped back" (changed, then put back as it was) or "UNKNOWN" (an undo failed)."""
    t0 = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str, start: float) -> float:
        now = time.monotonic()
        timings[name] = round(now - start, 3)
        return now

    def timed(name: str, work: Callable[..., Any], *args: Any) -> Callable[[], Any]:
        def job() -> Any:
            start = time.monotonic()
            try:
                return work(*args)
            finally:
                timings[name] = round(time.monotonic() - start, 3)
        return job

    result: dict[str, Any] = {"site": cfg.site, "from": tier, "host": os.uname().nodename,
                              "outcome": "untouched", "errors": [], "safety": None}
    errors: list[str] = result["errors"]
    repo = cfg.repo(tier)
    snapshots = None if repo.remote else cached_listing(cfg.state_dir, repo.location)
    result["listing"] = "kept by the runner" if snapshots is not None else "restic snapshots"
    try:
        if snapshots is None:
            snapshots = cfg.restic.snapshots(repo)
        db_snap, files_snap = choose(snapshots, cfg.host, at, snapshot)
    except (ResticError, RestoreError) as error:
        hint = ""
        if isinstance(error, ResticError) and repo.remote:
            others = " or ".join(f"--from {t}" for t in ("local", "a", "b") if t != tier)
            hint = (f" (is backup-{tier} reachable? {others} restores from another tier)")
        raise Failed([f"choosing the backup in {tier}: {error}{hint}; nothing touched"]) from None
    result.update({"snapshot_time": files_snap["time"],
                   "snapshots": {"db": db_snap["id"], "files": files_snap["id"]}})
    recorded = tag_value(files_snap, DUMP_SHA256)
    backup_ids = tag_value(files_snap, IDS_SHA256)
    same_ids = backup_ids is not None and backup_ids == ids_digest()
    t = lap("choose", t0)

    groups = swap.plan(cfg.restore_root, site_data_paths(cfg), cfg.required_mounts)
    token = files_snap["id"][:8]
    try:
        check_mounts(cfg)
        sides, olds = swap.leftovers(groups)
        if olds:
            raise RestoreError(f"{', '.join(olds)}: the live files of an earlier restore cut "
                               "after its swap; put them back or remove them first")
        for side in sides:
            shutil.rmtree(side)
        restore_db.prepare(cfg)
        writers = stop_writers(cfg.stop_units)
    except (RestoreError, swap.SwapError, OSError) as error:
        raise Failed([str(error)]) from None
    t = lap("stop", t)

    db_swap = restore_db.Swap(cfg)
    files_swap = swap.FileSwap(groups, token)
    stage_dir: Path | None = None
    verify_failed = False
    try:
        # The safety snapshot of the live state runs WHILE the backup is restored beside it:
        # the side database and directories touch nothing live (and are left out of the
        # snapshot), and nothing is swapped until both have succeeded. The writers are
        # stopped, so the live state it saves is the one the swap would replace.
        for group in groups:
            swap.make_side(group, token)
        jobs = {"safety snapshot": timed("safety snapshot", safety.take, cfg, datetime.now(UTC),
                                         safety_days, [f"{swap.SIDE_PREFIX}*"]),
                "database": timed("database", restore_db.load_side, cfg, tier, db_snap["id"])}
        for i, group in enumerate(groups):
            jobs[f"files {group.base}"] = timed(f"files {i}", restore_side, cfg, tier,
                                                files_snap["id"], group, token)
        if stage_config or apply_config_:
            jobs["config"] = timed("config", staged_config, cfg, tier, files_snap["id"], False)
        if not same_ids:
            stage_dir = Path(tempfile.mkdtemp(prefix="restore-ids-", dir=cfg.state_dir))
            jobs["users and groups"] = timed("users and groups", stage_ids, cfg, tier,
                                             files_snap["id"], stage_dir)
        done, job_errors = run_all(jobs)
        result["safety"] = done.get("safety snapshot")
        if job_errors:
            raise Failed(job_errors)
        t = lap("restore beside", t)
        result["database"] = done["database"]
        result["files"] = {"groups": [done[k] for k in done if k.startswith("files ")]}
        result["config"] = done.get("config") or {
            "staged_in": None, "applied": [], "note": "not staged (--stage-config to compare it)"}

        check = restore_db.check_stream(done["database"], recorded,
                                        DUMP_TRAILER in (db_snap.get("tags") or ()))
        result["verify"] = check
        if check["matches"] is False:
            verify_failed = True
            raise Failed(["the restored database differs from the snapshot's dump (sha256 "
                          f"{check['streamed_sha256'][:12]} streamed, "
                          f"{check['recorded_sha256'][:60]} recorded); live untouched"],
                         EXIT_VERIFY)
        files_swap.check()
        db_swap.check()
        if same_ids:
            result["files"]["owners_remapped"] = 0
        elif stage_dir is not None:
            result["files"]["owners_remapped"] = remap_owners(
                [g.side(token) for g in groups], stage_dir)
        t = lap("verify beside", t)

        result["outcome"] = "swapping"
        db_swap.swap_in()
        try:
            result["files"]["renames"] = files_swap.swap_in()
        except swap.SwapError as error:
            messages = [str(error)]
            try:
                db_swap.swap_back()
            except RestoreError as back_error:  # tried again below; both reported
                messages.append(f"database swap back: {back_error}")
            raise Failed(messages) from None
        result["outcome"] = "swapped"
        if check["matches"] is None or redump:
            actual = restore_db.redump_sha256(cfg)
            check["dump_sha256"] = actual
            if actual != check["streamed_sha256"] or check["matches"] is False:
                verify_failed = True
                raise Failed(["the restored database differs from the snapshot's dump "
                              "(re-dump); swapped back"], EXIT_VERIFY)
            check["matches"] = True
        check["matches_snapshot"] = bool(check["matches"])
        t = lap("swap", t)
        # From here the site IS restored: what fails now is reported (non-zero exit, the site
        # stays in maintenance) but never undoes the restore.
        result["outcome"] = "restored"
        for what, step in (
                ("applying the configuration", lambda: result["config"].update(
                    applied=apply_config(result["config"]))
                 if apply_config_ and result["config"].get("staged_in") else None),
                ("dropping the kept live tables", db_swap.finish),
                ("removing the kept live files", lambda: errors.extend(files_swap.finish())),
                ("counting rows", lambda: result["verify"].update(
                    row_counts=restore_db.row_counts(cfg)))):
            try:
                step()
            except (RestoreError, OSError) as error:
                errors.append(f"{what}: {error}")
        lap("finish", t)
    except Failed as failure:
        errors += failure.errors
        result["exit_code"] = failure.code
    except (ResticError, RestoreError, swap.SwapError, OSError) as error:
        errors.append(str(error))
    finally:
        if result["outcome"] != "restored":
            undo = []
            if result["outcome"] in ("swapping", "swapped"):
                undo += files_swap.swap_back()
                if db_swap.done:
                    try:
                        db_swap.swap_back()
                    except RestoreError as error:
                        undo.append(f"database swap back: {error}")
                result["outcome"] = "UNKNOWN" if undo else "swapped back"
            for step in (lambda: restore_db.drop_side(cfg),
                         lambda: undo.extend(swap.remove(groups, token))):
                try:
                    step()
                except (RestoreError, OSError) as error:
                    undo.append(f"cleaning up: {error}")
            errors += undo
            result.setdefault("verify", {})["matches_snapshot"] = False
        if stage_dir is not None:
            shutil.rmtree(stage_dir, ignore_errors=True)
        if result["outcome"] == "restored":
            # A restored site runs, even if its units were down before (a broken host).
            errors += start_writers(cfg.stop_units)
        elif result["outcome"] != "UNKNOWN":
            # The site as it was: what ran runs again (the proxy's maintenance is lifted by
            # the admin side only after success and a health check).
            errors += start_writers(writers)
    result["verify_failed"] = verify_failed
    result["timings"] = timings
    result["seconds"] = round(time.monotonic() - t0, 3)
    return result
