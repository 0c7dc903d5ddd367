"""Restore one site on the host that runs this (its own web host, or a re-created one of the
same name) without ever leaving it worse than before (R-INC-1, issue 11).

    python3 -m backup.restore --site NAME --from local|a|b [--at DATE|TIME | --snapshot ID]
                              [--stage-config | --apply-config] [--redump] [--safety-days N]

1. choose the backup: the newest night whose database AND files snapshots are both in the
   chosen repository, taken at or before --at (a date means the end of that local day), or
   the pair one of whose ids starts with --snapshot (a restore's safety snapshot is chosen only
   that way). From local, the listing the runner keeps is used while it is exact;
2. refuse before touching anything: private files not mounted, a kept `.prerestore-*` or
   `<db>_prerestore` of an earlier restore cut after its swap;
3. stop the writers (the site's PHP-FPM and cron units) and CHECK they stopped (`systemctl
   stop` result and `is-active`); one that does not stop: the others are started again and
   the restore ends, nothing touched;
4. at once, every error collected: the SAFETY SNAPSHOT of the current state, database and
   files, into the local repository (backup.safety: tagged `safety`, forgotten by the local
   rotation after --safety-days, 7 by default, never counted as a daily/weekly/monthly, never
   copied off-site; its id and the command that goes back to it are printed and recorded);
   and, touching nothing live meanwhile (left out of that snapshot):
5. the dump into a side database `<db>_restore`, hashed on the way (backup.restore_db); the
   files into side directories on the same filesystems as their live places, private files
   inside the mounted gocryptfs (backup.swap); the snapshot's users and groups beside (for
   owners by name) or its configuration (--stage-config);
6. verify BEFORE swapping: the streamed dump's sha256 against the one recorded at backup time;
   every restored path present (`restic restore --verify` checked the contents); owners mapped
   by name on a host with other ids;
7. swap: one atomic RENAME TABLE for the database, renames for the files, the live state kept
   aside; a backup without a recorded sha256 (or --redump) is then checked by a re-dump; any
   failure swaps everything back;
8. --apply-config: only the restorable configuration is put in place (RESTORABLE_CONFIG:
   never secrets or ids of the backup's host, see config_restorable);
9. the kept live state is dropped, the writers started and checked;
10. one JSON document on stdout; a line in restores.jsonl (what, when, tier, snapshots,
   result, duration, safety snapshot: R-INC-4) and in runs.jsonl.

Any failure: the live site is as it was (nothing swapped, or everything swapped back), the
exit code is non-zero and every error is named. The proxy's maintenance page is the admin
side's (tasks/backup_restore.py): set before, lifted only after success and a health check.
"""


from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from backup import config as config_mod
from backup import restore_db, safety, swap
from backup.config import ConfigError, SiteBackup
from backup.lock import LockHeld, exclusive
from backup.records import (
    DUMP_SHA256,
    DUMP_TRAILER,
    IDS_SHA256,
    cached_listing,
    ids_digest,
    tag_value,
)
from backup.restic import ResticError
from backup.restore_db import CHUNK, RestoreError
from backup.run import KIND_DB, KIND_FILES, series
from backup.snapshots import parse_restic_time
from backup.status import RunRecord, append_run
from backup.tags import SAFETY, SAFETY_KEEP_DAYS

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_VERIFY, EXIT_LOCKED = 0, 1, 2, 6, 75

# --- choosing the backup --------------------------------------------------------------------


def choose(snapshots: list[dict[str, Any]], host: str, at: datetime | None,
           snapshot: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(db, files) snapshots of the newest backup at or before `at` that has both; or the
    pair one of whose ids starts with `snapshot` (the only way to choose a safety snapshot)."""
    own = series(snapshots, host)
    if snapshot:
        return _pair_of(own, snapshot)
    nights: dict[datetime, dict[str, dict[str, Any]]] = {}
    for s in own:
        moment = parse_restic_time(s["time"])
        if SAFETY in s["tags"] or (at is not None and moment > at):
            continue
        kind = KIND_DB if KIND_DB in s["tags"] else KIND_FILES
        nights.setdefault(moment, {})[kind] = s
    complete = sorted(m for m, kinds in nights.items() if len(kinds) == 2)
    if not complete:
        when = f" at or before {at.isoformat()}" if at else ""
        raise RestoreError(f"no complete backup (database and files){when} in this repository")
    best = nights[complete[-1]]
    return best[KIND_DB], best[KIND_FILES]


def _pair_of(own: list[dict[str, Any]], prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if len(prefix) < 8 or any(c not in "0123456789abcdef" for c in prefix):
        raise RestoreError(f"--snapshot {prefix!r}: expected at least 8 hex digits of an id")
    found = [s for s in own if s["id"].startswith(prefix)]
    if len(found) != 1:
        raise RestoreError(f"--snapshot {prefix}: {'no' if not found else 'more than one'} "
                           "snapshot of this site with that id in this repository")
    chosen = found[0]
    moment, is_safety = parse_restic_time(chosen["time"]), SAFETY in chosen["tags"]
    pair = {KIND_DB if KIND_DB in s["tags"] else KIND_FILES: s for s in own
            if parse_restic_time(s["time"]) == moment and (SAFETY in s["tags"]) == is_safety}
    if len(pair) != 2:
        raise RestoreError(f"--snapshot {prefix}: its database or files half is missing")
    return pair[KIND_DB], pair[KIND_FILES]


def parse_at(text: str, zone: Any) -> datetime:
    """A date means the end of that local day; a time without offset is local."""
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).date()
            return datetime.combine(day, dtime(23, 59, 59), tzinfo=zone)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RestoreError(f"--at {text!r}: expected YYYY-MM-DD or an ISO time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


# --- steps ----------------------------------------------------------------------------------


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


# Host configuration a restore may put back (--apply-config). Never what belongs to the host
# it was taken on: its users' and groups' ids, secrets generated per host (database
# password, the private files' gocryptfs password, Drupal's hash salt and the settings file
# that carries them), the backup identity (not even in the backup), MariaDB's maintenance
# credentials. `fab deploy` writes those for THIS host; the restored ones would not match its
# encrypted private files, database users or certificates (issue 11).
NOT_RESTORABLE_CONFIG = (
    "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/subuid", "/etc/subgid",
    "/etc/hosting/*/db.cnf", "/etc/hosting/*/private.pass", "/etc/hosting/*/hash_salt",
    "/etc/hosting/*/settings.local.php", "/etc/hosting/backup/*", "/etc/hosting/backup-storage/*",
    "/etc/mysql/debian.cnf", "/etc/ssh/*", "*.key", "*.pem", "*password*", "*secret*",
)


def config_restorable(path: str) -> bool:
    """May --apply-config put this file of the snapshot in place (pure)?"""
    return not any(fnmatch.fnmatchcase(path, pattern) for pattern in NOT_RESTORABLE_CONFIG)


def staged_config(cfg: SiteBackup, repo_tier: str, snapshot_id: str, apply: bool
                  ) -> dict[str, Any]:
    """The snapshot's host configuration, restored beside the live one; differences listed."""
    includes = [p for p in cfg.paths if p.startswith("/etc/")]
    if not includes:
        # restic restore without --include would restore the whole snapshot.
        return {"staged_in": None, "differs_from_live": [], "applied": False}
    stage = Path(cfg.state_dir) / "restored-config" / snapshot_id[:8]
    stage.mkdir(parents=True, exist_ok=True)
    os.chmod(stage.parent, 0o700)
    cfg.restic.run(cfg.restic.restore_argv(cfg.repo(repo_tier), snapshot_id, str(stage),
                                           includes), f"restore config from {repo_tier}")
    differ = []
    for root, _dirs, files in os.walk(stage):
        for name in files:
            staged = Path(root) / name
            live = Path("/") / staged.relative_to(stage)
            if _differs(staged, live):
                differ.append(str(live))
    return {"staged_in": str(stage), "differs_from_live": sorted(differ), "applied": [],
            "not_restorable": sorted(p for p in differ if not config_restorable(p))}


def _differs(staged: Path, live: Path) -> bool:
    """A staged file against the live one: links by their target (a unit masked by a link to
    /dev/null is the same on both hosts), files by content."""
    if staged.is_symlink() or live.is_symlink():
        return not (staged.is_symlink() and live.is_symlink()
                    and os.readlink(staged) == os.readlink(live))
    return not live.is_file() or _sha(live) != _sha(staged)


def apply_config(staged: dict[str, Any]) -> list[str]:
    """The staged files that differ and are restorable, put in place (mode and owner kept)."""
    stage, applied = Path(staged["staged_in"]), []
    for live in staged["differs_from_live"]:
        if not config_restorable(live):
            continue
        source = stage / live.lstrip("/")
        os.makedirs(os.path.dirname(live), exist_ok=True)
        tmp = f"{live}.restore-tmp"
        shutil.copy2(source, tmp, follow_symlinks=False)
        st = os.lstat(source)
        os.lchown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, live)
        applied.append(live)
    return applied


def stage_ids(cfg: SiteBackup, repo_tier: str, snapshot_id: str, stage: Path) -> None:
    """The snapshot's /etc/passwd and /etc/group under `stage` (for remap_owners)."""
    cfg.restic.run(cfg.restic.restore_argv(cfg.repo(repo_tier), snapshot_id, str(stage),
                                           ["/etc/passwd", "/etc/group"]),
                   f"restore the backup's users and groups from {repo_tier}")


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _id_maps(stage: Path) -> tuple[dict[int, int], dict[int, int]]:
    """old id -> this host's id, for names whose ids differ (users, then groups)."""
    maps: list[dict[int, int]] = []
    for table in ("passwd", "group"):
        old: dict[str, int] = {}
        try:
            text = (stage / "etc" / table).read_text()
        except OSError:
            maps.append({})
            continue
        for line in text.splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[2].isdigit():
                old[fields[0]] = int(fields[2])
        live = {}
        for line in Path(f"/etc/{table}").read_text().splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[2].isdigit():
                live[fields[0]] = int(fields[2])
        maps.append({old[n]: live[n] for n in old if n in live and live[n] != old[n]})
    return maps[0], maps[1]


def remap_owners(paths: list[str], stage: Path) -> int:
    """restic restores numeric ids: give each file the owner it had BY NAME (fresh hosts)."""
    uids, gids = _id_maps(stage)
    if not uids and not gids:
        return 0
    changed = 0
    for top in paths:
        for root, dirs, files in os.walk(top):
            for name in [*dirs, *files, ""] if root == top else [*dirs, *files]:
                path = os.path.join(root, name) if name else root
                st = os.lstat(path)
                uid, gid = uids.get(st.st_uid, st.st_uid), gids.get(st.st_gid, st.st_gid)
                if (uid, gid) != (st.st_uid, st.st_gid):
                    os.lchown(path, uid, gid)
                    changed += 1
    return changed


def _systemctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=300)


def stop_writers(units: Sequence[str]) -> list[str]:
    """Stop every unit and check it stopped; returns those that were active (to start again).
    Any unit that does not stop: the stopped ones are started again and RestoreError names
    every failure (nothing else touched)."""
    active = [u for u in units if _systemctl("is-active", "--quiet", u).returncode == 0]
    errors = []
    for unit in units:
        proc = _systemctl("stop", unit)
        if proc.returncode != 0:
            errors.append(f"systemctl stop {unit} failed (exit {proc.returncode}): "
                          f"{proc.stderr.strip()[-300:]}")
        elif _systemctl("is-active", "--quiet", unit).returncode == 0:
            errors.append(f"{unit} is still active after systemctl stop")
    if errors:
        errors += start_writers(active)
        raise RestoreError("the site's writers could not be stopped, nothing touched: "
                           + "; ".join(errors))
    return active


def start_writers(units: Sequence[str]) -> list[str]:
    """Start the units again and check they run; returns the errors (every one)."""
    errors = []
    for unit in units:
        proc = _systemctl("start", unit)
        if proc.returncode != 0:
            errors.append(f"systemctl start {unit} failed (exit {proc.returncode}): "
                          f"{proc.stderr.strip()[-300:]}")
        elif _systemctl("is-active", "--quiet", unit).returncode != 0:
            errors.append(f"{unit} is not active after systemctl start")
    return errors


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



# --- the whole restore ---------------------------------------------------------------------


class Failed(RuntimeError):
    """The restore stopped; `errors` lists every failure, `code` is the exit code."""

    def __init__(self, errors: list[str], code: int = 1) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
        self.code = code


def restore(cfg: SiteBackup, tier: str, at: datetime | None, apply_config_: bool,
            stage_config: bool = False, redump: bool = False, snapshot: str | None = None,
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
                          f"{check['recorded_sha256'][:60]} recorded); live untouched"], 6)
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
                              "(re-dump); swapped back"], 6)
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


def restore_record(result: dict[str, Any], started: str, at: str | None,
                   selector: str | None) -> dict[str, Any]:
    """The line of restores.jsonl (R-INC-4): what, when, from where, result, duration, and the
    safety snapshot to go back to."""
    safety_ = result.get("safety") or {}
    return {
        "time": started, "site": result.get("site"), "host": result.get("host"),
        "from": result.get("from"), "at": at, "snapshot": selector,
        "snapshots": result.get("snapshots"), "snapshot_time": result.get("snapshot_time"),
        "result": "ok" if not result.get("errors") else "failed",
        "outcome": result.get("outcome"), "errors": result.get("errors", []),
        "seconds": result.get("seconds"),
        "safety": ({k: safety_[k] for k in ("db", "files", "expires")} if safety_ else None),
        "go_back": safety_.get("go_back"),
    }


def append_restore(state_dir: str, line: dict[str, Any]) -> None:
    path = Path(state_dir) / RESTORES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (json.dumps(line, sort_keys=True) + "\n").encode())
    finally:
        os.close(fd)


RESTORES_FILE = "restores.jsonl"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m backup.restore")
    p.add_argument("--site", required=True)
    p.add_argument("--config")
    p.add_argument("--from", dest="tier", choices=("local", "a", "b"), default="a")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--at", help="YYYY-MM-DD (end of that day) or an ISO time; default: newest")
    when.add_argument("--snapshot", help="the pair one of whose ids starts with this (8+ hex "
                                         "digits): how a safety snapshot is restored")
    p.add_argument("--stage-config", action="store_true",
                   help="restore the snapshot's host configuration beside the live one and "
                        "list the differences")
    p.add_argument("--apply-config", action="store_true",
                   help="also put its restorable part in place (never secrets or ids)")
    p.add_argument("--redump", action="store_true",
                   help="also verify by a new dump of the restored database (slower)")
    p.add_argument("--safety-days", type=int, default=SAFETY_KEEP_DAYS,
                   help=f"days the safety snapshot is kept (default {SAFETY_KEEP_DAYS})")
    args = p.parse_args(argv)
    try:
        cfg = config_mod.load(args.config or config_mod.config_path(args.site))
        at = parse_at(args.at, cfg.policy.zone) if args.at else None
        if not 1 <= args.safety_days <= 365:
            raise RestoreError(f"--safety-days {args.safety_days}: 1..365")
    except (ConfigError, RestoreError) as error:
        print(f"restore {args.site}: {error}", file=sys.stderr)
        return EXIT_USAGE
    if pwd.getpwuid(os.getuid()).pw_name != "root":
        print(f"restore {args.site}: must run as root", file=sys.stderr)
        return EXIT_USAGE
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = RunRecord(cfg.site, "restore", tier=args.tier)
    code = EXIT_OK
    result: dict[str, Any] = {"site": cfg.site, "from": args.tier, "errors": []}
    try:
        with exclusive(cfg.lock_file, f"backup or restore of {cfg.site}"):
            with record.step("restore") as step:
                try:
                    result = restore(cfg, args.tier, at, args.apply_config, args.stage_config,
                                     args.redump, args.snapshot, args.safety_days)
                except Failed as failure:
                    result["errors"] = failure.errors
                    result["exit_code"] = failure.code
                    result["outcome"] = "untouched"
                step.update({"snapshot_time": result.get("snapshot_time"),
                             "snapshots": result.get("snapshots"),
                             "outcome": result.get("outcome")})
    except LockHeld as error:
        print(f"restore {cfg.site}: REFUSED: {error}", file=sys.stderr)
        return EXIT_LOCKED
    for error in result["errors"]:
        record.fail(error)
    if result["errors"]:
        code = result.get("exit_code", EXIT_FAILED)
        if result.get("verify_failed"):
            code = EXIT_VERIFY
    result["record"] = restore_record(result, started, args.at, args.snapshot)
    record.facts["restore"] = result
    data = record.as_dict()
    data["exit_code"] = code
    result["record"]["exit_code"] = code
    for write in (lambda: append_restore(cfg.state_dir, result["record"]),
                  lambda: append_run(cfg.state_dir, data)):
        try:
            write()
        except OSError as error:
            record.fail(f"writing the record: {error}")
            code = code or EXIT_FAILED
    print(json.dumps(data, indent=2, sort_keys=True))
    if result.get("safety"):
        print(f"restore {cfg.site}: safety snapshot {result['safety']['files'][:8]} (files) + "
              f"{result['safety']['db'][:8]} (database), kept until "
              f"{result['safety']['expires']}; to go back: {result['safety']['go_back']}",
              file=sys.stderr)
    if code:
        print(f"restore {cfg.site}: FAILED (exit {code}, live site "
              f"{result.get('outcome', 'untouched')}):", file=sys.stderr)
        for error in record.errors:
            print(f"  - {error}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
