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
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from backup.config import ConfigError, policy_from, read_json_object
from backup.lock import LockHeld, exclusive
from backup.policy import Policy
from backup.restic import Repo, Restic, ResticError
from backup.rotation import TIER_A, TIER_B, select
from backup.run import series
from backup.snapshots import parse_restic_time
from backup.status import RunRecord, append_run, directory_size, tier_summary, update_status

DEFAULT_DIR = Path("/etc/hosting/backup-storage")
EXIT_OK, EXIT_USAGE, EXIT_ROTATION_FAILED, EXIT_CHECK_FAILED, EXIT_LOCKED = 0, 2, 4, 5, 75


@dataclass(frozen=True)
class StorageSite:
    site: str
    tier: str
    host: str  # the web host whose series this repository holds (restic --host)
    policy: Policy
    restic: Restic
    repo: Repo
    state_dir: str
    lock_file: str
    check_subsets: int = 28


def parse(data: dict[str, Any], source: str = "config") -> StorageSite:
    try:
        tier = data["tier"]
        if tier not in (TIER_A, TIER_B):
            raise ConfigError(f"{source}.tier: {tier!r} is not 'a' or 'b'")
        restic = data.get("restic", {})
        subsets = int(data.get("check_subsets", 28))
        if not 1 <= subsets <= 1000:
            raise ConfigError(f"{source}.check_subsets: {subsets} is not within 1..1000")
        return StorageSite(
            site=data["site"],
            tier=tier,
            host=data.get("host", f"web-{data['site']}"),
            policy=policy_from(data["policy"]),
            restic=Restic(binary=restic.get("binary", "restic"),
                          cache_dir=restic.get("cache_dir"),
                          retry_lock=restic.get("retry_lock", "30m")),
            repo=Repo(tier=tier, location=data["repository"],
                      password_file=data["password_file"]),
            state_dir=data["state_dir"],
            lock_file=data["lock_file"],
            check_subsets=subsets,
        )
    except KeyError as missing:
        raise ConfigError(f"{source}: missing field {missing}") from None
    except (TypeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"{source}: {error}") from None


def load(path: str | Path) -> StorageSite:
    path = Path(path)
    return parse(read_json_object(path), str(path))


def check_subset(day: date, subsets: int) -> str:
    """`N/subsets` for `restic check --read-data-subset`: consecutive days read consecutive
    subsets, so every pack is read once in `subsets` days."""
    return f"{day.toordinal() % subsets + 1}/{subsets}"


def rotate_repository(cfg: StorageSite, now: datetime, record: RunRecord) -> dict[str, Any]:
    restic = cfg.restic
    with record.step("unlock"):
        # A copy cut half-way leaves a stale lock; `unlock` removes only stale ones.
        restic.run(restic.unlock_argv(cfg.repo), f"remove stale locks of {cfg.tier}")
    with record.step("list"):
        snapshots = restic.snapshots(cfg.repo)
    own = series(snapshots, cfg.host)
    # Snapshots of other hosts or without our kind tags: never ours to rotate, but listed, so
    # an operator sees them (R-GDPR-3 applies to them too: the audit reports their ages).
    strangers = [s for s in snapshots if s not in own]
    if strangers:
        record.warnings.append(f"{len(strangers)} snapshot(s) not taken by the backup runner "
                               f"for {cfg.host}: left alone")
    selection = select(cfg.tier, own, now, cfg.policy)
    with record.step("forget and prune") as step:
        step["kept"] = len(selection.keep)
        step["forgotten"] = [str(d) for d in selection.forget]
        if selection.forget_ids:
            restic.run(restic.forget_argv(cfg.repo, selection.forget_ids),
                       f"forget {len(selection.forget_ids)} snapshot(s) in {cfg.tier}")
    gone = set(selection.forget_ids)
    left = [s for s in own if s["id"] not in gone]
    summary = tier_summary(left)
    summary["bytes"] = directory_size(cfg.repo.location)
    summary["free_bytes"] = shutil.disk_usage(cfg.repo.location).free
    summary["oldest_age_days"] = _oldest_age(left, now, cfg.policy)
    return summary


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
            if args.check:
                try:
                    check_repository(cfg, now, record)
                except ResticError as error:
                    record.fail(f"restic check of {cfg.tier} FAILED: {error}")
                    code = code or EXIT_CHECK_FAILED
    except LockHeld as error:
        print(f"rotate {cfg.site}: REFUSED: {error}", file=sys.stderr)
        return EXIT_LOCKED
    data = record.as_dict()
    data["exit_code"] = code
    append_run(cfg.state_dir, data)
    update_status(cfg.state_dir, data, tiers)
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
