"""tags_for_new_snapshot: weekly/monthly decided when the snapshot is taken (R-BKP-3, R-BKP-5)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from backup_helpers import paris, snap

from backup.policy import Policy
from backup.rotation import select
from backup.tags import MONTHLY, WEEKLY, tags_for_new_snapshot


def daily(first: date, last: date, at: str = "03:15") -> list[dict]:
    """One untagged snapshot a day; tags do not matter for deciding the NEXT one."""
    days = (last - first).days + 1
    return [snap(f"{first + timedelta(days=i)} {at}") for i in range(days)]


def test_tags_for_new_snapshot_empty_repository_is_weekly_and_monthly() -> None:
    assert tags_for_new_snapshot([], paris("2025-03-12 03:15")) == [WEEKLY, MONTHLY]


def test_tags_for_new_snapshot_sunday_after_daily_backups_is_weekly() -> None:
    history = daily(date(2025, 3, 3), date(2025, 3, 8))  # Monday .. Saturday
    assert tags_for_new_snapshot(history, paris("2025-03-09 03:15")) == [WEEKLY]


def test_tags_for_new_snapshot_sunday_failed_makes_monday_weekly() -> None:
    history = daily(date(2025, 3, 3), date(2025, 3, 8))  # Sunday 2025-03-09 failed
    assert tags_for_new_snapshot(history, paris("2025-03-10 03:15")) == [WEEKLY]
    history.append(snap("2025-03-10 03:15", WEEKLY))
    assert tags_for_new_snapshot(history, paris("2025-03-11 03:15")) == []


def test_tags_for_new_snapshot_mid_month_mid_week_is_untagged() -> None:
    history = daily(date(2025, 3, 1), date(2025, 3, 11))
    assert tags_for_new_snapshot(history, paris("2025-03-12 03:15")) == []


def test_tags_for_new_snapshot_gap_over_month_boundary_makes_first_after_gap_monthly() -> None:
    history = daily(date(2025, 5, 20), date(2025, 5, 27))  # then nothing until Thursday 06-05
    # Only the newest is left locally after a week of failures (backup.rotation keeps it).
    kept = select("local", history, paris("2025-06-04 03:15")).keep_ids
    local = [s for s in history if s["id"] in kept]
    assert [s["time"][:10] for s in local] == ["2025-05-27"]
    assert tags_for_new_snapshot(local, paris("2025-06-05 03:15")) == [WEEKLY, MONTHLY]


def test_tags_for_new_snapshot_gap_inside_month_after_pruning_is_not_monthly_again() -> None:
    # The month's monthly on the 1st, then 19 failed days: local pruned everything but its
    # newest, which is the memory that this month already has its monthly.
    history = [snap("2025-05-01 03:15", MONTHLY)]
    kept = select("local", history, paris("2025-05-20 03:15")).keep_ids
    assert kept == [history[0]["id"]]
    assert tags_for_new_snapshot(history, paris("2025-05-21 03:15")) == [WEEKLY]  # 05-18 window


def test_tags_for_new_snapshot_first_of_year_after_december_is_weekly_and_monthly() -> None:
    history = daily(date(2025, 12, 25), date(2025, 12, 31))
    # Thursday 2026-01-01: a new month, but the week began on Sunday 2025-12-28.
    assert tags_for_new_snapshot(history, paris("2026-01-01 03:15")) == [MONTHLY]


def test_tags_for_new_snapshot_at_0030_paris_uses_paris_date_for_month() -> None:
    # 2025-03-01 00:30 in Paris is still 2025-02-28 in UTC: it is March's first backup.
    history = daily(date(2025, 2, 23), date(2025, 2, 28), at="00:30")
    assert tags_for_new_snapshot(history, paris("2025-03-01 00:30")) == [MONTHLY]


def test_tags_for_new_snapshot_day_after_spring_dst_is_not_weekly() -> None:
    history = [snap("2025-03-30 03:15", WEEKLY)]  # Sunday, first day in summer time
    assert tags_for_new_snapshot(history, paris("2025-03-31 03:15")) == []
    assert tags_for_new_snapshot(history, paris("2025-04-05 23:59")) == [MONTHLY]
    assert tags_for_new_snapshot(history, paris("2025-04-06 00:00")) == [WEEKLY, MONTHLY]


def test_tags_for_new_snapshot_day_after_autumn_dst_is_not_weekly() -> None:
    # 02:30 happens twice on Sunday 2025-10-26; the first one (summer time) was taken.
    history = [snap("2025-10-26 02:30", WEEKLY)]
    assert tags_for_new_snapshot(history, paris("2025-10-27 00:30")) == []
    assert tags_for_new_snapshot(history, paris("2025-11-02 00:30")) == [WEEKLY, MONTHLY]


def test_tags_for_new_snapshot_second_snapshot_of_day_inherits_the_days_tags() -> None:
    files = snap("2025-06-01 03:15", WEEKLY, MONTHLY)
    history = [*daily(date(2025, 5, 28), date(2025, 5, 31)), files]
    assert tags_for_new_snapshot(history, paris("2025-06-01 03:20")) == [WEEKLY, MONTHLY]


def test_tags_for_new_snapshot_rerun_after_rotation_keeps_the_days_decision() -> None:
    monthly = snap("2025-05-01 03:15", WEEKLY, MONTHLY)
    # The day's first snapshot: 05-01 is still the local newest, so not monthly.
    assert tags_for_new_snapshot([monthly], paris("2025-05-21 03:15")) == [WEEKLY]
    day21 = snap("2025-05-21 03:15", WEEKLY)
    local = [monthly, day21]
    kept = select("local", local, paris("2025-05-21 03:20")).keep_ids
    local = [s for s in local if s["id"] in kept]
    assert local == [day21]  # 05-01 pruned: only the day's own decision is left to go by
    assert tags_for_new_snapshot(local, paris("2025-05-21 14:00")) == [WEEKLY]


def test_tags_for_new_snapshot_rebuilt_host_with_b_listing_is_not_monthly_again() -> None:
    on_b = [snap("2025-05-01 03:15", WEEKLY, MONTHLY), snap("2025-05-11 03:15", WEEKLY)]
    # Empty local repository after a rebuild (R-INC-1): the runner adds B's listing.
    assert tags_for_new_snapshot([], paris("2025-05-14 03:15")) == [WEEKLY, MONTHLY]
    assert tags_for_new_snapshot(on_b, paris("2025-05-14 03:15")) == []


def test_tags_for_new_snapshot_monday_weekly_day_policy_uses_monday_windows() -> None:
    history = daily(date(2025, 3, 4), date(2025, 3, 9))  # Tuesday .. Sunday
    policy = Policy(weekly_day=0)
    assert tags_for_new_snapshot(history, paris("2025-03-10 03:15"), policy) == [WEEKLY]


def test_tags_for_new_snapshot_naive_time_raises() -> None:
    with pytest.raises(ValueError, match="naive"):
        tags_for_new_snapshot([], datetime(2025, 1, 1, 3, 15))
