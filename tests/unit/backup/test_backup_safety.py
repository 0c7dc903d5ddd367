"""A restore's safety snapshot in the rotation (issue 11): never a daily, weekly or monthly,
never the "newest backup" a tier keeps anyway, never copied off-site, forgotten by the local
rotation from its `safety-expires=` date (7 days by default)."""

from __future__ import annotations

from datetime import date

import pytest
from backup_helpers import paris, snap

from backup.copies import snapshots_to_copy
from backup.rotation import LOCAL, TIER_A, TIER_B, select
from backup.tags import (
    MONTHLY,
    SAFETY,
    SAFETY_KEEP_DAYS,
    WEEKLY,
    safety_expires,
    safety_tags,
    tags_for_new_snapshot,
)


def safety(local: str, keep_days: int = SAFETY_KEEP_DAYS) -> dict:
    return snap(local, *safety_tags(date.fromisoformat(local[:10]), keep_days))


def test_safety_tags_default_expire_seven_days_after_the_snapshot() -> None:
    assert SAFETY_KEEP_DAYS == 7
    assert safety_tags(date(2025, 3, 12)) == [SAFETY, "safety-expires=2025-03-19"]
    assert safety_tags(date(2025, 3, 12), 1) == [SAFETY, "safety-expires=2025-03-13"]


@pytest.mark.parametrize("days", [0, 366])
def test_safety_tags_out_of_range_days_raise_naming_the_setting(days: int) -> None:
    with pytest.raises(ValueError, match="safety keep days"):
        safety_tags(date(2025, 3, 12), days)


def test_safety_expires_without_or_with_a_mangled_tag_is_the_default() -> None:
    assert safety_expires([SAFETY], date(2025, 3, 12)) == date(2025, 3, 19)
    assert safety_expires([SAFETY, "safety-expires=never"], date(2025, 3, 12)) == date(2025, 3, 19)


def test_select_local_keeps_a_safety_snapshot_until_it_expires_then_forgets_it() -> None:
    snaps = [safety("2025-03-12 14:00"), snap("2025-03-12 03:15", WEEKLY)]
    sid = snaps[0]["id"]
    assert sid in select(LOCAL, snaps, paris("2025-03-18 12:00")).keep_ids
    forgotten = select(LOCAL, snaps, paris("2025-03-19 03:15"))
    assert sid in forgotten.forget_ids
    assert "expired on 2025-03-19" in str(next(d for d in forgotten.forget if d.id == sid))


def test_select_local_honours_a_longer_expiry_than_the_daily_retention() -> None:
    snaps = [safety("2025-03-01 14:00", keep_days=30), snap("2025-03-20 03:15")]
    assert snaps[0]["id"] in select(LOCAL, snaps, paris("2025-03-20 04:00")).keep_ids


def test_select_a_newer_safety_snapshot_does_not_steal_the_newest_backups_protection() -> None:
    """Backups failed for 10 days; a restore then took a safety snapshot. The last real
    backup must still be kept as the tier's newest, and the safety one is not it."""
    snaps = [snap("2025-03-01 03:15"), safety("2025-03-10 14:00")]
    kept = select(LOCAL, snaps, paris("2025-03-11 03:15"))
    assert snaps[0]["id"] in kept.keep_ids
    assert "newest backup" in str(next(d for d in kept.keep if d.id == snaps[0]["id"]))
    # ... and once expired, a safety snapshot is forgotten even if it is the newest.
    assert snaps[1]["id"] in select(LOCAL, snaps, paris("2025-03-17 03:15")).forget_ids


@pytest.mark.parametrize("tier", [TIER_A, TIER_B])
def test_select_off_site_tiers_never_keep_a_safety_snapshot(tier: str) -> None:
    snaps = [safety("2025-03-12 14:00"), snap("2025-03-09 03:15", WEEKLY, MONTHLY)]
    assert snaps[0]["id"] in select(tier, snaps, paris("2025-03-12 15:00")).forget_ids


def test_snapshots_to_copy_leaves_safety_snapshots_on_the_web_host() -> None:
    local = [snap("2025-03-12 03:15"), safety("2025-03-12 14:00")]
    assert snapshots_to_copy(TIER_A, local, [], paris("2025-03-12 15:00")) == [local[0]["id"]]


def test_tags_for_new_snapshot_ignores_a_safety_snapshot_taken_earlier_that_day() -> None:
    """Sunday's restore took a safety snapshot before the night's backup: Sunday's backup is
    still the week's first (weekly), and the month's first (monthly)."""
    history = [snap("2025-02-28 03:15"), safety("2025-03-02 01:00")]
    assert tags_for_new_snapshot(history, paris("2025-03-02 03:15")) == [WEEKLY, MONTHLY]
