"""select: what each tier keeps at an explicit `now` (R-BKP-1..6, R-GDPR-3)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from backup_helpers import paris, snap

from backup.rotation import select
from backup.tags import MONTHLY, WEEKLY


def kept_dates(tier: str, snapshots: list[dict], now: str) -> list[str]:
    selection = select(tier, snapshots, paris(now))
    by_id = {s["id"]: s["time"][:10] for s in snapshots}
    return [by_id[i] for i in selection.keep_ids]


def daily(first: date, days: int, *tags: str) -> list[dict]:
    return [snap(f"{first + timedelta(days=i)} 03:15", *tags) for i in range(days)]


def test_select_local_daily_history_keeps_ages_0_to_6() -> None:
    history = daily(date(2025, 5, 1), 20)
    assert kept_dates("local", history, "2025-05-20 03:15") == [
        f"2025-05-{d}" for d in range(14, 21)
    ]


def test_select_a_daily_history_keeps_ages_0_to_13() -> None:
    history = daily(date(2025, 5, 1), 20)
    assert kept_dates("a", history, "2025-05-20 03:15") == [
        f"2025-05-{d:02d}" for d in range(7, 21)
    ]


def test_select_local_day_after_spring_dst_forgets_age_7_though_under_7x24_hours() -> None:
    old, young = snap("2025-03-24 03:15"), snap("2025-03-25 03:15")
    now = paris("2025-03-31 03:15")  # summer time since 2025-03-30
    assert now.astimezone(UTC) - paris("2025-03-24 03:15").astimezone(UTC) < timedelta(days=7)
    selection = select("local", [old, young, snap("2025-03-31 03:15")], now)
    assert selection.forget_ids == [old["id"]]
    assert "age 7 >= 7" in selection.forget[0].reason


def test_select_local_day_after_autumn_dst_keeps_age_6_though_over_7x24_hours() -> None:
    taken = snap("2025-10-21 00:30")  # summer time
    now = paris("2025-10-27 23:45")  # winter time since 2025-10-26
    assert now.astimezone(UTC) - paris("2025-10-21 00:30").astimezone(UTC) > timedelta(days=7)
    older = snap("2025-10-20 23:59")
    selection = select("local", [older, taken, snap("2025-10-27 03:15")], now)
    assert selection.forget_ids == [older["id"]]
    assert "age 6 < 7" in selection.keep[0].reason


def test_select_snapshot_at_0030_paris_counts_its_paris_date() -> None:
    # Taken 2025-03-01 00:30 Paris = 2025-02-28 23:30 UTC: age 6 on 03-07, not 7.
    taken = snap("2025-03-01 00:30")
    selection = select("local", [taken, snap("2025-03-07 03:15")], paris("2025-03-07 03:15"))
    assert selection.keep_ids[0] == taken["id"]
    assert selection.keep[0].date == "2025-03-01"


def test_select_all_backups_failing_20_days_keeps_newest_on_local_and_a() -> None:
    history = daily(date(2025, 5, 1), 10)  # 05-11 .. 05-30 failed
    for tier in ("local", "a"):
        selection = select(tier, history, paris("2025-05-30 03:15"))
        assert selection.keep_ids == [history[-1]["id"]]
        assert "newest" in selection.keep[0].reason
        assert len(selection.forget) == 9


def test_select_b_weekly_36_days_old_newest_of_tier_is_kept() -> None:
    weekly = snap("2025-05-04 03:15", WEEKLY)
    selection = select("b", [weekly], paris("2025-06-09 03:15"))
    assert selection.keep_ids == [weekly["id"]]


def test_select_b_weekly_kept_35_days_forgotten_at_36() -> None:
    weekly, newer = snap("2025-05-04 03:15", WEEKLY), snap("2025-06-08 03:15", WEEKLY)
    assert kept_dates("b", [weekly, newer], "2025-06-08 03:15") == ["2025-05-04", "2025-06-08"]
    selection = select("b", [weekly, newer], paris("2025-06-09 03:15"))
    assert selection.forget_ids == [weekly["id"]]
    assert "R-BKP-4" in selection.forget[0].reason


def test_select_b_weekly_that_is_monthly_survives_35_days() -> None:
    both = snap("2025-06-01 03:15", WEEKLY, MONTHLY)
    newer = snap("2025-09-07 03:15", WEEKLY)
    assert kept_dates("b", [both, newer], "2025-09-07 03:15") == ["2025-06-01", "2025-09-07"]


def test_select_b_monthly_of_leap_day_kept_365_days_forgotten_at_366() -> None:
    monthly, newer = snap("2024-02-29 03:15", MONTHLY), snap("2025-02-02 03:15", WEEKLY)
    assert kept_dates("b", [monthly, newer], "2025-02-28 03:15") == ["2024-02-29", "2025-02-02"]
    selection = select("b", [monthly, newer], paris("2025-03-01 03:15"))
    assert selection.forget_ids == [monthly["id"]]
    assert "R-GDPR-3" in selection.forget[0].reason


def test_select_newest_older_than_365_days_is_forgotten_on_every_tier() -> None:
    last = snap("2027-02-28 03:15", WEEKLY, MONTHLY)
    for tier in ("local", "a", "b"):
        assert kept_dates(tier, [last], "2028-02-28 03:15") == ["2027-02-28"]  # 365 days
        selection = select(tier, [last], paris("2028-02-29 03:15"))  # 366: leap year
        assert selection.keep == () and selection.forget_ids == [last["id"]]


def test_select_b_untagged_snapshot_is_forgotten() -> None:
    stray, weekly = snap("2025-05-05 03:15"), snap("2025-05-11 03:15", WEEKLY)
    selection = select("b", [stray, weekly], paris("2025-05-12 03:15"))
    assert selection.forget_ids == [stray["id"]]
    assert "neither weekly nor monthly" in selection.forget[0].reason


def test_select_newest_day_with_files_and_database_snapshots_keeps_both() -> None:
    files, dump = snap("2025-05-10 03:15"), snap("2025-05-10 03:16", sid="dump")
    selection = select("local", [snap("2025-05-09 03:15"), files, dump], paris("2025-05-30 03:15"))
    assert selection.keep_ids == [files["id"], dump["id"]]


def test_select_empty_tier_keeps_and_forgets_nothing() -> None:
    selection = select("b", [], paris("2025-05-30 03:15"))
    assert selection.keep == () and selection.forget == ()


def test_select_unknown_tier_raises() -> None:
    with pytest.raises(ValueError, match="tier 'c'"):
        select("c", [], paris("2025-05-30 03:15"))


def test_select_naive_now_raises() -> None:
    with pytest.raises(ValueError, match="naive"):
        select("local", [snap("2025-05-09 03:15")], datetime(2025, 5, 30))


def test_select_decision_str_gives_a_log_line() -> None:
    selection = select("a", daily(date(2025, 5, 1), 1), paris("2025-05-02 03:15"))
    assert str(selection.keep[0]).endswith(
        "2025-05-01: daily on backup-a (R-BKP-2), age 1 < 14 days"
    )
