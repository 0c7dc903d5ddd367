"""The nightly backup of one site, on its web host, under cron (stdlib only).

    python3 -m backup.run --site NAME [--config PATH] [--time ISO-8601] [--init]

Steps (each timed in the run record; docs/backups.md):
  1. the local repository's listing (the weekly/monthly memory lives there, backup.tags): the
     one kept from the previous run when it still names exactly the repository's snapshot
     files, else `restic snapshots` (backup.records);
  2. database: `mariadb-dump ...` through `restic backup --stdin-from-command`: a dump that
     fails, even half-way, fails the backup and leaves no snapshot (R-BKP-8). The dump runs
     under backup.dumpsum, which ends it with a line recording its sha256 (the restore's
     check);
  3. files: code, public and private files, the host's configuration, never logs
     (R-BKP-8, R-GDPR-11), at the same time as step 2 (a second restic process). A backup
     is both snapshots or neither: if either fails, the other's snapshot is forgotten
     again, so the tiers' "newest backup" is whole;
  4. copy to A (every snapshot) and to B (weeklies, monthlies), over SSH with the site's
     certificate into append-only repositories (R-BKP-2, R-BKP-3, R-BKP-7). A copy that fails
     is caught up by the next run: what to copy is computed from both listings each time;
  5. rotate the local repository (`restic forget ID... --prune`), also when the backup
     failed (R-BKP-1, R-GDPR-3). A and B rotate on the storage servers (backup.rotate);
  6. status.json + a line in runs.jsonl (R-INC-4), the local listing kept for the next run;
     a clear message and a non-zero exit on any failure.

Steps 2-3 are backup.take's; this module runs the night (1-5) and is its command line.

Exit codes: 0 ok; 1 backup failed (no new backup); 3 backup ok, an off-site copy failed;
4 rotation failed; 2 bad usage or configuration; 75 another run holds the lock.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from backup import config as config_mod
from backup import metrics
from backup.config import ConfigError, SiteBackup
from backup.copies import snapshots_to_copy
from backup.lock import LockHeld, exclusive
from backup.records import cached_listing, save_listing
from backup.restic import ResticError
from backup.rotation import LOCAL, TIER_A, TIER_B, select
from backup.snapshots import parse_restic_time, readable
from backup.status import (
    RunRecord,
    append_run,
    directory_size,
    read_status,
    tier_summary,
    update_status,
    utc_now,
)
from backup.take import series, take_backup

EXIT_OK = 0
EXIT_BACKUP_FAILED = 1
EXIT_USAGE = 2
EXIT_OFFSITE_FAILED = 3
EXIT_ROTATION_FAILED = 4
EXIT_LOCKED = 75  # EX_TEMPFAIL: try again later


def copy_offsite(cfg: SiteBackup, record: RunRecord, local: list[dict[str, Any]],
                 now: datetime, tiers: dict[str, Any]) -> None:
    """Step 4 for A then B; each failure is recorded and the other tier still tried."""
    own = series(local, cfg.host)
    for tier in (TIER_A, TIER_B):
        repo = cfg.repo(tier)
        try:
            with record.step(f"copy to {tier}") as step:
                present = readable(cfg.restic.snapshots(repo))  # year 0 is the ledger's
                ids = snapshots_to_copy(tier, own, series(present, cfg.host), now, cfg.policy)
                step["copied"] = len(ids)
                if ids:
                    cfg.restic.run(cfg.restic.copy_argv(cfg.local, repo, ids),
                                   f"copy {len(ids)} snapshot(s) to {tier}")
                added = [s for s in own if s["id"] in set(ids)]
                tiers[tier] = {**tier_summary(series(present, cfg.host) + added),
                               "ok": True, "error": None}
        except (ResticError, ValueError) as error:
            message = (f"copy to {tier} failed (the local snapshots stay; the next run copies "
                       f"what is missing): {error}")
            record.fail(message)
            # The tier's last picture stays in status.json (update_status merges per tier),
            # marked failed: monitoring and `fab backup.status` show which tier is behind.
            tiers[tier] = {"ok": False, "error": message, "failed": utc_now()}


def rotate(cfg: SiteBackup, record: RunRecord, tier: str, now: datetime,
           snapshots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Forget what the policy drops (reasons in the record), prune; returns what is left."""
    repo = cfg.repo(tier)
    own = series(snapshots, cfg.host)
    selection = select(tier, own, now, cfg.policy)
    with record.step(f"rotate {tier}") as step:
        step["kept"] = len(selection.keep)
        step["forgotten"] = [str(d) for d in selection.forget]
        if selection.forget_ids:
            cfg.restic.run(cfg.restic.forget_argv(repo, selection.forget_ids),
                           f"forget {len(selection.forget_ids)} snapshot(s) in {tier}")
    gone = set(selection.forget_ids)
    return [s for s in snapshots if s["id"] not in gone]


def run_backup(cfg: SiteBackup, when: datetime, now: datetime | None = None,
               offsite: bool = True) -> RunRecord:
    """One night's run, steps 1-5; the caller writes the status (step 6)."""
    when = when.replace(microsecond=0)  # restic keeps whole seconds of --time
    now = now or when
    record = RunRecord(cfg.site, "backup")
    record.facts["backup_time"] = when.isoformat()
    tiers: dict[str, Any] = {}
    record.facts["tiers"] = tiers
    try:
        with record.step("list local") as step:
            local = local_listing(cfg)
            step["kept_listing"] = local is not None
            if local is None:
                local = cfg.restic.snapshots(cfg.local)
    except ResticError as error:
        record.fail(f"local repository unreadable, nothing done: {error}")
        return record
    taken = take_backup(cfg, record, local, when)
    record.facts["backup"] = "ok" if taken else "failed"
    local = local + taken
    if offsite:
        copy_offsite(cfg, record, local, now, tiers)
    try:
        local = rotate(cfg, record, LOCAL, now, local)
    except ResticError as error:
        record.fail(f"rotation of the local repository failed: {error}")
    save_listing(cfg.state_dir, cfg.local.location, local)
    summary = tier_summary(series(local, cfg.host))
    summary["bytes"] = directory_size(cfg.local.location)
    local_errors = [e for e in record.errors if not e.startswith("copy to ")]
    summary["ok"] = not local_errors
    summary["error"] = local_errors[0] if local_errors else None
    tiers[LOCAL] = summary
    return record


def local_listing(cfg: SiteBackup) -> list[dict[str, Any]] | None:
    """The local repository's listing kept by the previous run, if it is still exact."""
    return cached_listing(cfg.state_dir, cfg.local.location)


def exit_code(record: RunRecord) -> int:
    if record.ok:
        return EXIT_OK
    if record.facts.get("backup") != "ok":
        return EXIT_BACKUP_FAILED
    if any(not v.get("ok", True) for k, v in record.steps.items() if k.startswith("copy")):
        return EXIT_OFFSITE_FAILED
    if any(not v.get("ok", True) for k, v in record.steps.items() if k.startswith("rotate")):
        return EXIT_ROTATION_FAILED
    return EXIT_BACKUP_FAILED  # an incomplete files snapshot, a withdrawn partial backup


def init_repositories(cfg: SiteBackup) -> list[str]:
    """Create whatever repository is missing; all share the chunker parameters (restic copy).

    The local one first (from A's parameters if A exists: a rebuilt host keeps deduplicating
    against its off-site history), then A and B from the local one. A and B are created by the
    web host through their append-only access: creating files is all `init` needs."""
    restic = cfg.restic
    done = []
    if not restic.exists(cfg.local):
        source = cfg.a if restic.exists(cfg.a) else None
        restic.run(restic.init_argv(cfg.local, source), "init local repository")
        done.append(LOCAL)
    for tier in (TIER_A, TIER_B):
        repo = cfg.repo(tier)
        if not restic.exists(repo):
            restic.run(restic.init_argv(repo, cfg.local), f"init repository on {tier}")
            done.append(tier)
    return done


def _parse_time(text: str) -> datetime:
    try:
        moment = parse_restic_time(text) if "T" in text else None
    except ValueError:
        moment = None
    if moment is None:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a UTC offset (e.g. +01:00)")
    return moment


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m backup.run",
                                description="Back up one site (database, files, config).")
    p.add_argument("--site", required=True)
    p.add_argument("--config", help="default: /etc/hosting/backup/SITE.json")
    p.add_argument("--time", type=_parse_time,
                   help="backup time with offset (tests, catch-up); default: now")
    p.add_argument("--init", action="store_true",
                   help="create missing repositories (local, A, B) and exit")
    p.add_argument("--local-only", action="store_true", help="skip the copies to A and B")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = config_mod.load(args.config or config_mod.config_path(args.site))
    except ConfigError as error:
        print(f"backup {args.site}: bad configuration: {error}", file=sys.stderr)
        if not args.init:  # tonight's backup did not run: monitoring must see it (issue 13)
            _failed_metrics(args.site, None, 0.0)
        return EXIT_USAGE
    if cfg.site != args.site:
        print(f"backup {args.site}: {args.config} is the configuration of {cfg.site}",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        with exclusive(cfg.lock_file, f"backup of {cfg.site}"):
            if args.init:
                try:
                    created = init_repositories(cfg)
                except ResticError as error:
                    print(f"backup {cfg.site}: init FAILED: {error}", file=sys.stderr)
                    return EXIT_BACKUP_FAILED
                print(f"backup {cfg.site}: repositories created: {', '.join(created) or 'none'}")
                return EXIT_OK
            when = args.time or datetime.now(cfg.policy.zone)
            t0 = time.monotonic()
            try:
                record = run_backup(cfg, when, offsite=not args.local_only)
                return report(cfg, record)
            except BaseException:
                # Whatever happened, monitoring sees a failed run (BackupFailed), and the
                # tiers' last known times stay (BackupStale): backup.metrics.runner_failed.
                _failed_metrics(cfg.site, cfg.state_dir, time.monotonic() - t0)
                raise
    except LockHeld as error:
        print(f"backup {cfg.site}: REFUSED: {error}", file=sys.stderr)
        return EXIT_LOCKED


def _failed_metrics(site: str, state_dir: str | None, seconds: float) -> None:
    try:
        status = read_status(state_dir) if state_dir else {}
    except (OSError, ValueError):
        status = {}
    warning = metrics.write_safely(metrics.runner_file(site),
                                   metrics.runner_failed(site, status, seconds))
    if warning:
        print(f"backup {site}: {warning}", file=sys.stderr)


def report(cfg: SiteBackup, record: RunRecord) -> int:
    """Step 6: status file, run record, one clear line (and the errors) for cron's mail."""
    data = record.as_dict()
    code = exit_code(record)
    data["exit_code"] = code
    tiers = data.pop("tiers", {})
    append_run(cfg.state_dir, data)
    status = update_status(cfg.state_dir, data, tiers)
    # Node exporter's textfile metrics (issue 13): per tier, newest backup, run, size.
    warning = metrics.write_safely(metrics.runner_file(cfg.site),
                                   metrics.runner_metrics(cfg.site, status))
    if warning:
        print(f"backup {cfg.site}: {warning}", file=sys.stderr)
    counts = ", ".join(f"{t} {v.get('snapshots', 'unreachable')}"
                       for t, v in sorted(tiers.items()))
    if record.ok:
        print(f"backup {cfg.site}: ok in {data['seconds']:.1f} s; snapshots: {counts}")
    else:
        print(f"backup {cfg.site}: FAILED (exit {code}) after {data['seconds']:.1f} s",
              file=sys.stderr)
        for error in record.errors:
            print(f"  - {error}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
