"""Rotation and verification of one site's repository ON A STORAGE SERVER (backup-a/backup-b).

    python3 -m backup.rotate --site NAME [--config PATH] [--now ISO] [--check] [--no-rotate]

The web host reaches A and B only through `rclone serve restic --append-only`: it can add
snapshots, never delete them. So the pruning happens here, where the repository is trusted
(docs/backups.md, "Trust model"): list, decide with the same policy code as everywhere
(backup.rotation.select for tier "a" or "b"), `restic forget ID... --prune`. It needs only
its own listing and its own clock.

`--check` runs `restic check --read-data-subset=N/28` with N from the date, so every pack
file is read once every 28 days (R-GDPR-9: integrity), and a metadata check every day.

Runs as the site's storage user (the owner of the repository files), under cron.
Exit codes: 0 ok; 4 rotation failed; 5 check failed; 2 bad usage; 75 locked.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from backup import ledger as ledger_mod
from backup import rekey, trusted
from backup.config import ConfigError
from backup.lock import LockHeld, exclusive
from backup.metrics import METRICS_FILE, storage_metrics, write_textfile
from backup.policy import Policy
from backup.restic import ResticError
from backup.rotation import select
from backup.snapshots import parse_restic_time
from backup.status import (
    RunRecord,
    append_run,
    directory_size,
    read_status,
    tier_summary,
    update_status,
)
from backup.storage_site import DEFAULT_DIR, StorageSite, load_site, parse  # noqa: F401

EXIT_OK, EXIT_USAGE, EXIT_ROTATION_FAILED, EXIT_CHECK_FAILED, EXIT_LOCKED = 0, 2, 4, 5, 75
load = load_site  # the name the tests and older callers use


def check_subset(day: date, subsets: int) -> str:
    """`N/subsets` for `restic check --read-data-subset`: consecutive days read consecutive
    subsets, so every pack is read once in `subsets` days."""
    return f"{day.toordinal() % subsets + 1}/{subsets}"


def rotate_repository(cfg: StorageSite, now: datetime, record: RunRecord) -> dict[str, Any]:
    restic = cfg.restic
    with record.step("locks") as step:
        # Junk in locks/ (the append-only server accepts new lock files) would fail every
        # forget and check: removed here, never a lock restic can read (backup.trusted).
        junk = trusted.junk_locks(cfg.repo, restic)
        if junk:
            step["removed"] = trusted.remove_locks(cfg.repo, junk)
            record.warnings.append(f"removed {len(junk)} lock file(s) restic cannot read: "
                                   f"{', '.join(n[:12] for n in junk)}")
    with record.step("unlock"):
        # A copy cut half-way leaves a stale lock; `unlock` removes only stale ones.
        restic.run(restic.unlock_argv(cfg.repo), f"remove stale locks of {cfg.tier}")
    with record.step("list"):
        snapshots = restic.snapshots(cfg.repo)
    with record.step("ledger") as step:
        ledger, events, not_snapshots = update_ledger(cfg, snapshots, now)
        step["new"] = sum(1 for e in events if e["event"] == "seen")
    with record.step("keys") as step:
        # A key the compromised host added (`restic key add` passes the append-only server)
        # outlives a rebuild: reported every night until `fab backup.contain` removes it.
        extra, first = rekey.unexpected_keys(cfg)
        step.update({"unexpected": len(extra), "recorded_first": first})
    if extra:
        record.warnings.append(f"unexpected repository key(s) {', '.join(k[:8] for k in extra)}"
                               f": not added by backup.setup nor backup.contain")
    assert cfg.expect is not None
    view = trusted.rotation_view(snapshots, ledger, cfg.host, cfg.policy, now)
    for snapshot_id, why in trusted.reasons_of(ledger, view.suspect).items():
        record.warnings.append(f"suspect snapshot {snapshot_id[:8]}: {'; '.join(why)}")
    if view.others_kept:
        record.warnings.append(f"{len(view.others_kept)} snapshot(s) not taken by the backup "
                               f"runner for {cfg.host} or suspect: kept as evidence until "
                               f"{cfg.policy.max_age_days} days after they arrived")
    if not_snapshots:
        record.warnings.append(f"not snapshots in snapshots/: {', '.join(not_snapshots)}")
    selection = select(cfg.tier, view.genuine, now, cfg.policy)
    forget_ids = [*selection.forget_ids, *view.others_expired]
    with record.step("forget and prune") as step:
        step["kept"] = len(selection.keep)
        step["forgotten"] = [str(d) for d in selection.forget] + [
            f"{i[:8]}: arrived more than {cfg.policy.max_age_days} days ago (R-GDPR-3)"
            for i in view.others_expired]
        if forget_ids:
            restic.run(restic.forget_argv(cfg.repo, forget_ids),
                       f"forget {len(forget_ids)} snapshot(s) in {cfg.tier}")
    gone = set(forget_ids)
    left = [s for s in view.genuine if s["id"] not in gone]
    summary = tier_summary(left)
    summary.update(trusted.summarise(view, ledger))
    summary["unexpected_keys"] = len(extra)
    if cfg.quota_bytes is not None:
        summary["quota_bytes"] = cfg.quota_bytes
    summary["bytes"] = directory_size(cfg.repo.location)
    summary["free_bytes"] = shutil.disk_usage(cfg.repo.location).free
    summary["oldest_age_days"] = _oldest_age(left, now, cfg.policy)
    return summary


def update_ledger(cfg: StorageSite, snapshots: list[dict[str, Any]],
                  now: datetime) -> tuple[ledger_mod.Ledger, list[dict[str, Any]], list[str]]:
    """The ledger brought up to date under its own lock (the path unit may be recording)."""
    assert cfg.expect is not None
    path = Path(cfg.state_dir) / ledger_mod.LEDGER_FILE
    with exclusive(str(path) + ".lock", f"ledger of {cfg.site}", wait=60):
        return ledger_mod.update(path, cfg.repo.location, snapshots, cfg.expect, now)


def _oldest_age(snapshots: list[dict[str, Any]], now: datetime, policy: Policy) -> int | None:
    if not snapshots:
        return None
    oldest = min(policy.local_date(parse_restic_time(s["time"])) for s in snapshots)
    return policy.age_days(oldest, policy.local_date(now))


def check_repository(cfg: StorageSite, now: datetime, record: RunRecord) -> None:
    subset = check_subset(cfg.policy.local_date(now), cfg.check_subsets)
    with record.step("check") as step:
        step["read_data_subset"] = subset
        cfg.restic.run(cfg.restic.check_argv(cfg.repo, subset),
                       f"check {cfg.tier} (read data subset {subset})")


def _parse_now(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a UTC offset")
    return moment


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m backup.rotate")
    p.add_argument("--site", required=True)
    p.add_argument("--config", help=f"default: {DEFAULT_DIR}/SITE.json")
    p.add_argument("--now", type=_parse_now, help="rotation time with offset (tests)")
    p.add_argument("--check", action="store_true", help="also restic check a data subset")
    p.add_argument("--no-rotate", action="store_true", help="only check")
    args = p.parse_args(argv)
    try:
        cfg = load(args.config or DEFAULT_DIR / f"{args.site}.json")
    except ConfigError as error:
        print(f"rotate {args.site}: bad configuration: {error}", file=sys.stderr)
        return EXIT_USAGE
    now = args.now or datetime.now(cfg.policy.zone)
    record = RunRecord(cfg.site, "check" if args.no_rotate else "rotate", tier=cfg.tier)
    tiers: dict[str, Any] = {}
    code = EXIT_OK
    try:
        with exclusive(cfg.lock_file, f"rotation of {cfg.site} on {cfg.tier}"):
            if not args.no_rotate:
                try:
                    tiers[cfg.tier] = rotate_repository(cfg, now, record)
                except ResticError as error:
                    record.fail(f"rotation of {cfg.tier} failed: {error}")
                    code = EXIT_ROTATION_FAILED
                except Exception as error:  # noqa: BLE001 - recorded, never a silent stall
                    record.fail(f"rotation of {cfg.tier} failed unexpectedly: "
                                f"{type(error).__name__}: {error}")
                    code = EXIT_ROTATION_FAILED
            if args.check:
                try:
                    check_repository(cfg, now, record)
                except ResticError as error:
                    record.fail(f"restic check of {cfg.tier} FAILED: {error}")
                    code = code or EXIT_CHECK_FAILED
                except Exception as error:  # noqa: BLE001
                    record.fail(f"restic check of {cfg.tier} failed unexpectedly: "
                                f"{type(error).__name__}: {error}")
                    code = code or EXIT_CHECK_FAILED
    except LockHeld as error:
        print(f"rotate {cfg.site}: REFUSED: {error}", file=sys.stderr)
        return EXIT_LOCKED
    data = record.as_dict()
    data["exit_code"] = code
    append_run(cfg.state_dir, data)
    previous = (read_status(cfg.state_dir).get("tiers") or {}).get(cfg.tier) or {}
    update_status(cfg.state_dir, data, tiers)
    try:
        # Into this user's own state directory; the unit's privileged ExecStopPost
        # (`python3 -m backup.metrics publish`) hands it to node exporter (issue 13).
        write_textfile(Path(cfg.state_dir) / METRICS_FILE, storage_metrics(
            cfg.site, cfg.tier, data, tiers.get(cfg.tier), previous).render())
    except (OSError, ValueError) as error:
        print(f"rotate {cfg.site}: metrics not written: {error}", file=sys.stderr)
    if record.ok:
        left = tiers.get(cfg.tier, {}).get("snapshots", "?")
        print(f"rotate {cfg.site} on {cfg.tier}: ok in {data['seconds']:.1f} s; {left} snapshots")
    else:
        print(f"rotate {cfg.site} on {cfg.tier}: FAILED (exit {code})", file=sys.stderr)
        for message in record.errors:
            print(f"  - {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
