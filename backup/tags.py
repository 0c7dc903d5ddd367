"""Decide, when a snapshot is taken, whether it is the weekly and/or the monthly.

The tags become restic tags (`restic backup --tag weekly --tag monthly`), so tier B's
rotation reads them instead of guessing from what is left: after a gap in backups,
the first snapshot after the gap is its window's weekly and its month's monthly.

Where the memory lives: in the local repository itself. "First of the window/month"
must be judged against every snapshot ever taken, and the local tier keeps only 7 days,
but it ALWAYS keeps its newest backup (backup.rotation). So before a day's first
snapshot the local repository still holds the latest earlier backup, and:
  some backup was taken earlier this month  <=>  one of the listed snapshots is dated
  earlier this month (at least the newest one is).
No state file, no network: the runner passes `restic snapshots --json` of the local repo.
It may add tier A's or B's listing (e.g. after the web host was rebuilt with an empty
local repository); extra history only makes the answer more exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from backup.policy import DEFAULT_POLICY, Policy
from backup.snapshots import Snapshot, read_snapshots

WEEKLY = "weekly"
MONTHLY = "monthly"
# A safety snapshot: the state a restore found, saved in the LOCAL repository before it
# touched anything (backup.safety). Never a daily, weekly or monthly: tags_for_new_snapshot
# and backup.rotation.select ignore it; the local rotation forgets it from the date of its
# `safety-expires=` tag on (SAFETY_KEEP_DAYS after it was taken, unless the restore was told
# otherwise), and A and B never hold one (docs/backup-rotation.md).
SAFETY = "safety"
SAFETY_EXPIRES = "safety-expires="
SAFETY_KEEP_DAYS = 7


def safety_tags(taken: date, keep_days: int = SAFETY_KEEP_DAYS) -> list[str]:
    """Tags of a safety snapshot taken on the local date `taken`, kept `keep_days` days."""
    if not 1 <= keep_days <= 365:
        raise ValueError(f"safety keep days: {keep_days} is not within 1..365")
    return [SAFETY, f"{SAFETY_EXPIRES}{(taken + timedelta(days=keep_days)).isoformat()}"]


def safety_expires(tags: Iterable[str], taken: date) -> date:
    """The local date from which a safety snapshot is forgotten (its tag, else the default)."""
    for tag in tags:
        if tag.startswith(SAFETY_EXPIRES):
            try:
                return date.fromisoformat(tag[len(SAFETY_EXPIRES):])
            except ValueError:
                break  # a mangled tag: the default, never "kept for ever"
    return taken + timedelta(days=SAFETY_KEEP_DAYS)


def tags_for_new_snapshot(
    existing: Iterable[Mapping[str, Any] | Snapshot],
    new_time: datetime,
    policy: Policy = DEFAULT_POLICY,
) -> list[str]:
    """Rotation tags for a snapshot about to be taken at `new_time` (aware).

    Returns a subset of [WEEKLY, MONTHLY], in that order.

    A DAY's backup is decided once, by its first snapshot; later snapshots of the same
    local date (the database dump beside the files, a manual re-run) inherit that
    decision, since the earlier days that decided it may have been pruned meanwhile.
    """
    today = policy.local_date(new_time)
    # A restore's safety snapshot is no backup of the calendar: it must not take the place
    # of a week's or month's first backup.
    history = [s for s in read_snapshots(existing) if SAFETY not in s.tags]
    same_day = [s for s in history if policy.local_date(s.time) == today]
    if same_day:
        return [tag for tag in (WEEKLY, MONTHLY) if any(tag in s.tags for s in same_day)]

    earlier_dates = {policy.local_date(s.time) for s in history}
    tags = []
    # R-BKP-3: the first backup of the 7-day window starting on weekly_day (Sunday); if
    # Sunday's failed, Monday's is the week's weekly.
    if not _any_between(earlier_dates, policy.week_start(today), today):
        tags.append(WEEKLY)
    # R-BKP-5: the FIRST backup of the calendar month is the monthly.
    if not _any_between(earlier_dates, policy.month_start(today), today):
        tags.append(MONTHLY)
    return tags


def _any_between(dates: set[date], first: date, before: date) -> bool:
    """Is some date in [first, before)?"""
    return any(first <= day < before for day in dates)
