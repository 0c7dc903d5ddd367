"""Restore one site on the host that runs this (its own web host, or a fresh one) (R-INC-1).

    python3 -m backup.restore --site NAME --from local|a|b [--at DATE|TIME] [--apply-config]

1. choose the backup: the newest night whose database AND files snapshots are both in the
   chosen repository, taken at or before --at (a date means the end of that local day);
2. stop the site (its PHP-FPM and cron units) so nobody writes meanwhile;
3. files: `restic restore --include <site data> --delete --verify` into place: code
   releases and the `current` link, public files, config sync, private files (into the
   mounted gocryptfs view; it must be mounted). Only those paths: the ciphertext, temp
   files and sessions are never touched. File owners are mapped by NAME through the
   snapshot's /etc/passwd and /etc/group, so a fresh host whose users got other ids works;
4. database: every table dropped, then the dump loaded as root over the socket, streamed
   from `restic dump` (sha256 computed on the way);
5. start the site again and verify: a new dump of the restored database, made exactly as
   the backup makes it, must have the same sha256 as the snapshot's dump (same rows, same
   checksums); row counts per table are reported;
6. the host configuration of the snapshot is restored beside the live one (or in place with
   --apply-config) and the differences are listed: `fab deploy` owns the live configuration;
7. one JSON document on stdout, and a record in runs.jsonl (R-INC-4), timings included.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from backup import config as config_mod
from backup.config import ConfigError, SiteBackup
from backup.lock import LockHeld, exclusive
from backup.restic import ResticError
from backup.run import KIND_DB, KIND_FILES, series
from backup.snapshots import parse_restic_time
from backup.status import RunRecord, append_run

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_VERIFY, EXIT_LOCKED = 0, 1, 2, 6, 75
CHUNK = 1 << 20


class RestoreError(RuntimeError):
    pass


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


def restore_files(cfg: SiteBackup, repo_tier: str, snapshot_id: str) -> dict[str, Any]:
    for mount in cfg.required_mounts:
        if not os.path.ismount(mount):
            raise RestoreError(f"{mount} is not mounted: the private files would be written "
                               "outside the encrypted filesystem (R-GDPR-1); mount it first")
    includes = site_data_paths(cfg)
    argv = cfg.restic.restore_argv(cfg.repo(repo_tier), snapshot_id, "/", includes, delete=True)
    proc = cfg.restic.run(argv, f"restore files from {repo_tier}")
    summary = [line for line in proc.stdout.splitlines() if line.startswith("Summary")]
    return {"includes": includes, "summary": summary[-1] if summary else ""}


def staged_config(cfg: SiteBackup, repo_tier: str, snapshot_id: str, apply: bool
                  ) -> dict[str, Any]:
    """The snapshot's host configuration, restored beside the live one; differences listed."""
    stage = Path(cfg.state_dir) / "restored-config" / snapshot_id[:8]
    stage.mkdir(parents=True, exist_ok=True)
    os.chmod(stage.parent, 0o700)
    includes = [p for p in cfg.paths if p.startswith("/etc/")]
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


def _mariadb(cfg: SiteBackup, sql: str, database: str | None = None) -> str:
    argv = [cfg.database.client_program, "--protocol=socket", "--batch", "--skip-column-names"]
    if database:
        argv.append(database)
    proc = subprocess.run(argv, input=sql, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RestoreError(f"mariadb: {proc.stderr.strip()[-1000:]}")
    return proc.stdout


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise RestoreError(f"unsafe SQL identifier {name!r}")
    return f"`{name}`"


def restore_database(cfg: SiteBackup, repo_tier: str, snapshot_id: str) -> dict[str, Any]:
    db = cfg.database.name
    # A broken site may have lost its database altogether; grants survive DROP DATABASE.
    _mariadb(cfg, f"CREATE DATABASE IF NOT EXISTS {_ident(db)} CHARACTER SET utf8mb4 "
                  "COLLATE utf8mb4_general_ci;")
    tables = _mariadb(cfg, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                           f"WHERE TABLE_SCHEMA='{db}';").splitlines()
    drops = ["SET FOREIGN_KEY_CHECKS=0;"]
    for line in tables:
        name, _, kind = line.partition("\t")
        drops.append(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} IF EXISTS {_ident(name)};")
    _mariadb(cfg, "\n".join(drops) + "\n", db)
    # restic dump | mariadb, through this process: the stream's sha256 on the way.
    dump = subprocess.Popen(cfg.restic.dump_argv(cfg.repo(repo_tier), snapshot_id,
                                                 cfg.dump_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=cfg.restic.environment())
    load = subprocess.Popen([cfg.database.client_program, "--protocol=socket", db],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    assert dump.stdout is not None and load.stdin is not None
    digest, size = hashlib.sha256(), 0
    try:
        for chunk in iter(lambda: dump.stdout.read(CHUNK), b""):  # type: ignore[union-attr]
            digest.update(chunk)
            size += len(chunk)
            load.stdin.write(chunk)
    except BrokenPipeError:
        pass
    finally:
        load.stdin.close()
    dump_err = dump.stderr.read().decode(errors="replace") if dump.stderr else ""
    load_err = load.stderr.read().decode(errors="replace") if load.stderr else ""
    if dump.wait() != 0:
        raise RestoreError(f"restic dump failed: {dump_err.strip()[-1000:]}")
    if load.wait() != 0:
        raise RestoreError(f"loading the dump failed: {load_err.strip()[-1000:]}")
    return {"bytes": size, "sha256": digest.hexdigest()}


def verify_database(cfg: SiteBackup, expected_sha: str) -> dict[str, Any]:
    proc = subprocess.run(cfg.database.dump_command(), capture_output=True, timeout=3600)
    if proc.returncode != 0:
        raise RestoreError(f"re-dump for verification failed: {proc.stderr.decode()[-800:]}")
    actual = hashlib.sha256(proc.stdout).hexdigest()
    db = cfg.database.name
    counts = {}
    names = _mariadb(cfg, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
                          f"TABLE_SCHEMA='{db}' AND TABLE_TYPE='BASE TABLE';").split()
    for name in names:
        counts[name] = int(_mariadb(cfg, f"SELECT COUNT(*) FROM {_ident(name)};", db).strip())
    return {"dump_sha256": actual, "matches_snapshot": actual == expected_sha,
            "row_counts": counts}


def _units(action: str, units: Sequence[str]) -> None:
    for unit in units:
        subprocess.run(["systemctl", action, unit], capture_output=True, timeout=300)


# --- the whole restore ---------------------------------------------------------------------


def restore(cfg: SiteBackup, tier: str, at: datetime | None, apply_config: bool
            ) -> dict[str, Any]:
    t0 = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str, start: float) -> float:
        now = time.monotonic()
        timings[name] = round(now - start, 3)
        return now

    snapshots = cfg.restic.snapshots(cfg.repo(tier))
    db_snap, files_snap = choose(snapshots, cfg.host, at)
    t = lap("choose", t0)
    result: dict[str, Any] = {"site": cfg.site, "from": tier, "host": os.uname().nodename,
                              "snapshot_time": files_snap["time"],
                              "snapshots": {"db": db_snap["id"], "files": files_snap["id"]}}
    _units("stop", cfg.stop_units)
    try:
        result["files"] = restore_files(cfg, tier, files_snap["id"])
        t = lap("files", t)
        # The database and the staged configuration at once: they share nothing.
        with ThreadPoolExecutor(max_workers=2) as pool:
            config_job = pool.submit(staged_config, cfg, tier, files_snap["id"], apply_config)
            db_job = pool.submit(restore_database, cfg, tier, db_snap["id"])
            result["config"], result["database"] = config_job.result(), db_job.result()
        stage = Path(result["config"]["staged_in"])
        result["files"]["owners_remapped"] = remap_owners(
            [p for p in site_data_paths(cfg) if os.path.lexists(p)], stage)
        t = lap("database and config", t)
    finally:
        _units("start", cfg.stop_units)
    result["verify"] = verify_database(cfg, result["database"]["sha256"])
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
    p.add_argument("--apply-config", action="store_true",
                   help="also put the snapshot's host configuration in place")
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
                result = restore(cfg, args.tier, at, args.apply_config)
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

