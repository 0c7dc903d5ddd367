"""Replay the rotation over a history of daily backups, with the real policy code.

    python -m backup.simulate --start 2025-01-01 --days 400 [--skip 2025-03-02,2025-06-01]
                              [--time 03:15] [--json]

Each simulated day: take the backup at --time local (unless the day is in --skip),
tagged by tags_for_new_snapshot; copy to tier A; copy weeklies/monthlies to tier B;
then rotate every tier with now = that day's backup time (also on skipped days).
Prints the local dates of the snapshots left on each tier after the last day.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from backup.copies import snapshots_to_copy
from backup.policy import DEFAULT_POLICY, Policy
from backup.rotation import LOCAL, TIER_A, TIER_B, TIERS, select
from backup.snapshots import parse_restic_time
from backup.tags import tags_for_new_snapshot

Repo = list[dict[str, Any]]  # entries shaped like `restic snapshots --json`


def backup_time(day: date, at: time, policy: Policy = DEFAULT_POLICY) -> datetime:
    """The aware instant of `day` at local time `at`; a time skipped by DST moves forward."""
    naive = datetime.combine(day, at)
    # Through UTC and back: normalises a wall time that DST skips (02:30 on 2025-03-30).
    return naive.replace(tzinfo=policy.zone).astimezone(UTC).astimezone(policy.zone)


def restic_time(moment: datetime) -> str:
    """restic's format: RFC3339 with nanoseconds and the local offset."""
    iso = moment.isoformat(timespec="microseconds")
    return f"{iso[:26]}000{iso[26:]}"


def _snapshot_id(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def simulate(
    start: date,
    days: int,
    skip: Iterable[date] = (),
    at: time = time(3, 15),
    policy: Policy = DEFAULT_POLICY,
    journal: Repo | None = None,
) -> dict[str, Repo]:
    """The three repositories after `days` days starting at `start`.

    `journal`, if given, receives every snapshot taken, pruned or not (for tests).
    """
    skipped = set(skip)
    repos: dict[str, Repo] = {tier: [] for tier in TIERS}
    for offset in range(days):
        day = start + timedelta(days=offset)
        now = backup_time(day, at, policy)
        if day not in skipped:
            taken = restic_time(now)
            tags = tags_for_new_snapshot(repos[LOCAL], now, policy)
            snapshot = {"id": _snapshot_id(taken), "time": taken, "tags": tags}
            repos[LOCAL].append(snapshot)
            if journal is not None:
                journal.append(snapshot)
        for tier in (TIER_A, TIER_B):
            wanted = set(snapshots_to_copy(tier, repos[LOCAL], repos[tier], now, policy))
            repos[tier] += [_copy(s, tier) for s in repos[LOCAL] if s["id"] in wanted]
        for tier in TIERS:
            kept = set(select(tier, repos[tier], now, policy).keep_ids)
            repos[tier] = [s for s in repos[tier] if s["id"] in kept]
    return repos


def _copy(snapshot: dict[str, Any], tier: str) -> dict[str, Any]:
    """What `restic copy` leaves on the destination: a new id, `original` pointing back."""
    original = snapshot.get("original") or snapshot["id"]
    return {**snapshot, "id": _snapshot_id(tier, snapshot["id"]), "original": original}


def dates_by_tier(repos: dict[str, Repo], policy: Policy = DEFAULT_POLICY) -> dict[str, list[str]]:
    return {
        tier: sorted(policy.local_date(parse_restic_time(s["time"])).isoformat() for s in repo)
        for tier, repo in repos.items()
    }


def _date_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def _dates_arg(text: str) -> list[date]:
    return [_date_arg(part.strip()) for part in text.split(",") if part.strip()]


def _days_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive number of days: {text!r}")
    return value


def _time_arg(text: str) -> time:
    try:
        parsed = time.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or len(text) != 5:
        raise argparse.ArgumentTypeError(f"not a local time HH:MM: {text!r}")
    return parsed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m backup.simulate",
        description="Replay daily backups and the rotation; print what each tier keeps.",
    )
    parser.add_argument("--start", type=_date_arg, required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--days", type=_days_arg, required=True, help="number of days")
    parser.add_argument(
        "--skip", type=_dates_arg, default=[], help="comma-separated days whose backup fails"
    )
    parser.add_argument(
        "--time", type=_time_arg, default=time(3, 15), help="local backup time HH:MM"
    )
    parser.add_argument("--json", action="store_true", help="print only a JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    end = args.start + timedelta(days=args.days - 1)
    outside = [d.isoformat() for d in args.skip if not args.start <= d <= end]
    if outside:
        # A skip date outside the simulated days is surely a typo: say so, exit 2.
        parser.error(f"argument --skip: outside {args.start} .. {end}: {', '.join(outside)}")
    result = dates_by_tier(simulate(args.start, args.days, args.skip, args.time))
    if args.json:
        print(json.dumps(result))
    else:
        for tier, dates in result.items():
            print(f"{tier} ({len(dates)}): {' '.join(dates)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
