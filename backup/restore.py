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

This module is the command line and the records; the steps live beside it: restore_site (the
whole restore), restore_choose (1), restore_writers (3, 9), safety (4), restore_db and swap
(5-7: the side database and directories, their checks and swaps), restore_owners (6),
restore_config (8).
"""


from __future__ import annotations

import argparse
import json
import os
import pwd
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backup import config as config_mod
from backup.config import ConfigError
from backup.lock import LockHeld, exclusive
from backup.restore_choose import parse_at
from backup.restore_db import RestoreError
from backup.restore_site import (
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VERIFY,
    Failed,
    restore,
)
from backup.status import RunRecord, append_run
from backup.tags import SAFETY_KEEP_DAYS


def restore_record(result: dict[str, Any], started: str, at: str | None,
                   selector: str | list[str] | None) -> dict[str, Any]:
    """The line of restores.jsonl (R-INC-4): what, when, from where, result, duration, and the
    safety snapshot to go back to."""
    safety_ = result.get("safety") or {}
    return {
        "time": started, "site": result.get("site"), "host": result.get("host"),
        "from": result.get("from"), "at": at,
        # One --snapshot (a safety snapshot) as given; the ledger's pair (two) as a list.
        "snapshot": (selector[0] if isinstance(selector, list) and len(selector) == 1
                     else selector),
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
    when.add_argument("--snapshot", action="append",
                      help="the pair one of whose ids starts with this (8+ hex digits): how a "
                           "safety snapshot is restored; twice: exactly that database and files "
                           "pair (what fab restore chose from the storage server's ledger)")
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
    for message in result["errors"]:
        record.fail(message)
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
        for message in record.errors:
            print(f"  - {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
