"""Restore one site on the host that runs this (its own web host, or a fresh one) (R-INC-1).

    python3 -m backup.restore --site NAME --from local|a|b [--at DATE|TIME]
                              [--stage-config | --apply-config] [--redump]

1. choose the backup: the newest night whose database AND files snapshots are both in the
   chosen repository, taken at or before --at (a date means the end of that local day). From
   local, the listing the runner keeps is used while it is exact (backup.records);
2. stop the site (its PHP-FPM and cron units) so nobody writes meanwhile;
3. at once, as they share nothing:
   * files: `restic restore --include <site data> --delete --verify` into place: code
     releases and the `current` link, public files, config sync, private files (into the
     mounted gocryptfs view; it must be mounted). Only those paths: the ciphertext, temp
     files and sessions are never touched;
   * database: every table dropped, then `restic dump` streamed into the client (as root
     over the socket), its sha256 computed on the way;
   * the snapshot's /etc/passwd and /etc/group, beside the live ones, only when the backup's
     host had other user or group ids than this one (its `ids-sha256=` tag): file owners are
     then mapped by NAME, so a fresh host whose users got other ids works;
   * with --stage-config or --apply-config: the snapshot's host configuration, beside the live
     one (or also in place) and the differences listed: `fab deploy` owns the live one;
4. start the site again and verify the database: the sha256 of the dump streamed into the
   client must be the one recorded when the backup was taken (the files snapshot's
   `dump-sha256=` tag), and the client must have loaded it without error. A backup without
   that record (taken before it existed), or --redump, is verified by a new dump of the
   restored database, made exactly as the backup makes it: it must have the same sha256.
   Row counts per table are reported;
5. one JSON document on stdout, and a record in runs.jsonl (R-INC-4), timings included.

The database half (steps 3 and 4: load, stream-hash, verify) is backup.restore_db.
"""

from __future__ import annotations

import argparse
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
from datetime import datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from backup import config as config_mod
from backup.config import ConfigError, SiteBackup
from backup.lock import LockHeld, exclusive
from backup.records import DUMP_SHA256, IDS_SHA256, cached_listing, ids_digest, tag_value
from backup.restic import ResticError
from backup.restore_db import CHUNK, RestoreError, restore_database, verify_database
from backup.run import KIND_DB, KIND_FILES, series
from backup.snapshots import parse_restic_time
from backup.status import RunRecord, append_run

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_VERIFY, EXIT_LOCKED = 0, 1, 2, 6, 75

# --- choosing the backup --------------------------------------------------------------------


def choose(snapshots: list[dict[str, Any]], host: str, at: datetime | None
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(db, files) snapshots of the newest backup at or before `at` that has both."""
    nights: dict[datetime, dict[str, dict[str, Any]]] = {}
    for s in series(snapshots, host):
        moment = parse_restic_time(s["time"])
        if at is not None and moment > at:
            continue
        kind = KIND_DB if KIND_DB in s["tags"] else KIND_FILES
        nights.setdefault(moment, {})[kind] = s
    complete = sorted(m for m, kinds in nights.items() if len(kinds) == 2)
    if not complete:
        when = f" at or before {at.isoformat()}" if at else ""
        raise RestoreError(f"no complete backup (database and files){when} in this repository")
    best = nights[complete[-1]]
    return best[KIND_DB], best[KIND_FILES]


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


def restore_files(cfg: SiteBackup, repo_tier: str, snapshot_id: str) -> dict[str, Any]:
    check_mounts(cfg)
    includes = site_data_paths(cfg)
    argv = cfg.restic.restore_argv(cfg.repo(repo_tier), snapshot_id, "/", includes, delete=True)
    proc = cfg.restic.run(argv, f"restore files from {repo_tier}")
    summary = [line for line in proc.stdout.splitlines() if line.startswith("Summary")]
    return {"includes": includes, "summary": summary[-1] if summary else ""}


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
            if not live.is_file() or _sha(live) != _sha(staged):
                differ.append(str(live))
    if apply:
        cfg.restic.run(cfg.restic.restore_argv(cfg.repo(repo_tier), snapshot_id, "/", includes),
                       f"restore config in place from {repo_tier}")
    return {"staged_in": str(stage), "differs_from_live": sorted(differ), "applied": apply}


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


def _units(action: str, units: Sequence[str]) -> None:
    for unit in units:
        subprocess.run(["systemctl", action, unit], capture_output=True, timeout=300)


# --- the whole restore ---------------------------------------------------------------------


def restore(cfg: SiteBackup, tier: str, at: datetime | None, apply_config: bool,
            stage_config: bool = False, redump: bool = False) -> dict[str, Any]:
    t0 = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str, start: float) -> float:
        now = time.monotonic()
        timings[name] = round(now - start, 3)
        return now

    def timed(name: str, work: Callable[..., Any], *args: Any) -> Any:
        start = time.monotonic()
        try:
            return work(*args)
        finally:
            timings[name] = round(time.monotonic() - start, 3)

    repo = cfg.repo(tier)
    snapshots = None if repo.remote else cached_listing(cfg.state_dir, repo.location)
    listing = "kept by the runner" if snapshots is not None else "restic snapshots"
    if snapshots is None:
        snapshots = cfg.restic.snapshots(repo)
    db_snap, files_snap = choose(snapshots, cfg.host, at)
    recorded = tag_value(files_snap, DUMP_SHA256)
    backup_ids = tag_value(files_snap, IDS_SHA256)
    same_ids = backup_ids is not None and backup_ids == ids_digest()
    t = lap("choose", t0)
    result: dict[str, Any] = {"site": cfg.site, "from": tier, "host": os.uname().nodename,
                              "snapshot_time": files_snap["time"], "listing": listing,
                              "snapshots": {"db": db_snap["id"], "files": files_snap["id"]}}
    stage_dir = None
    check_mounts(cfg)  # before anything is touched: the database is restored meanwhile
    _units("stop", cfg.stop_units)
    try:
        # Files, database and what is staged at once: they share nothing, and each restic
        # command's key derivation overlaps the others' work.
        with ThreadPoolExecutor(max_workers=3) as pool:
            files_job = pool.submit(timed, "files", restore_files, cfg, tier, files_snap["id"])
            db_job = pool.submit(timed, "database", restore_database, cfg, tier, db_snap["id"])
            config_job = ids_job = None
            if stage_config or apply_config:
                config_job = pool.submit(timed, "config", staged_config, cfg, tier,
                                         files_snap["id"], apply_config)
            elif not same_ids:
                stage_dir = Path(tempfile.mkdtemp(prefix="restore-ids-", dir=cfg.state_dir))
                ids_job = pool.submit(timed, "users and groups", stage_ids, cfg, tier,
                                      files_snap["id"], stage_dir)
            result["files"] = files_job.result()
            result["database"] = db_job.result()
            if config_job is not None:
                result["config"] = config_job.result()
                staged = result["config"]["staged_in"]
                stage_dir = None if staged is None else Path(staged)
            else:
                result["config"] = {"staged_in": None, "applied": False,
                                    "note": "not staged (--stage-config to compare it)"}
            if ids_job is not None:
                ids_job.result()
        t = lap("restore", t)
        if same_ids:
            result["files"]["owners_remapped"] = 0
            result["files"]["owners"] = "same user and group ids as the backup's host"
        elif stage_dir is not None:
            result["files"]["owners_remapped"] = remap_owners(
                [p for p in site_data_paths(cfg) if os.path.lexists(p)], stage_dir)
        t = lap("owners", t)
    finally:
        if stage_dir is not None and stage_dir.name.startswith("restore-ids-"):
            shutil.rmtree(stage_dir, ignore_errors=True)
        _units("start", cfg.stop_units)
    result["verify"] = verify_database(cfg, result["database"], recorded, redump)
    lap("verify", t)
    result["timings"] = timings
    result["seconds"] = round(time.monotonic() - t0, 3)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m backup.restore")
    p.add_argument("--site", required=True)
    p.add_argument("--config")
    p.add_argument("--from", dest="tier", choices=("local", "a", "b"), default="a")
    p.add_argument("--at", help="YYYY-MM-DD (end of that day) or an ISO time; default: newest")
    p.add_argument("--stage-config", action="store_true",
                   help="restore the snapshot's host configuration beside the live one and "
                        "list the differences")
    p.add_argument("--apply-config", action="store_true",
                   help="also put the snapshot's host configuration in place")
    p.add_argument("--redump", action="store_true",
                   help="also verify by a new dump of the restored database (slower)")
    args = p.parse_args(argv)
    try:
        cfg = config_mod.load(args.config or config_mod.config_path(args.site))
        at = parse_at(args.at, cfg.policy.zone) if args.at else None
    except (ConfigError, RestoreError) as error:
        print(f"restore {args.site}: {error}", file=sys.stderr)
        return EXIT_USAGE
    if pwd.getpwuid(os.getuid()).pw_name != "root":
        print(f"restore {args.site}: must run as root", file=sys.stderr)
        return EXIT_USAGE
    record = RunRecord(cfg.site, "restore", tier=args.tier)
    code = EXIT_OK
    try:
        with exclusive(cfg.lock_file, f"backup or restore of {cfg.site}"):
            with record.step("restore") as step:
                result = restore(cfg, args.tier, at, args.apply_config, args.stage_config,
                                 args.redump)
                step.update({"snapshot_time": result["snapshot_time"],
                             "snapshots": result["snapshots"]})
            record.facts["restore"] = result
            if not result["verify"]["matches_snapshot"]:
                record.fail("the restored database differs from the snapshot's dump")
                code = EXIT_VERIFY
    except LockHeld as error:
        print(f"restore {cfg.site}: REFUSED: {error}", file=sys.stderr)
        return EXIT_LOCKED
    except (ResticError, RestoreError, OSError) as error:
        record.fail(str(error))
        code = EXIT_FAILED
    data = record.as_dict()
    data["exit_code"] = code
    append_run(cfg.state_dir, data)
    print(json.dumps(data, indent=2, sort_keys=True))
    if code:
        print(f"restore {cfg.site}: FAILED: {'; '.join(record.errors)}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())

