"""Policy numbers, restic's time format, and the local calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from backup_helpers import paris
from hypothesis import given
from hypothesis import strategies as st

from backup.policy import DEFAULT_POLICY, Policy
from backup.snapshots import Snapshot, parse_restic_time


def test_parse_restic_time_nanoseconds_truncates_to_microseconds() -> None:
    parsed = parse_restic_time("2025-03-30T03:15:00.123456789+02:00")
    assert parsed == datetime(2025, 3, 30, 3, 15, 0, 123456, tzinfo=timezone(timedelta(hours=2)))


def test_parse_restic_time_short_fraction_pads_it() -> None:
    assert parse_restic_time("2025-03-30T03:15:00.5+02:00").microsecond == 500000


def test_parse_restic_time_without_fraction_or_with_z_parses() -> None:
    assert parse_restic_time("2025-01-01T00:00:00Z") == datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_restic_time("2025-01-01T01:00:00+01:00") == datetime(2025, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["", "2025-03-30", "2025-03-30T03:15:00", "2025-03-30T03:15:00.1234567890+02:00"]
)
def test_parse_restic_time_malformed_raises(text: str) -> None:
    with pytest.raises(ValueError, match="restic snapshot time"):
        parse_restic_time(text)


@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5))]
        ),
    ),
    nanoseconds=st.integers(0, 999),
)
def test_parse_restic_time_random_instants_round_trip(moment: datetime, nanoseconds: int) -> None:
    iso = moment.isoformat(timespec="microseconds")
    text = f"{iso[:26]}{nanoseconds:03d}{iso[26:]}"
    assert parse_restic_time(text) == moment


def test_snapshot_from_restic_entry_without_tags_has_no_tags() -> None:
    entry = {"id": "ab" * 32, "time": "2025-01-01T03:15:00+01:00", "tags": None}
    assert Snapshot.from_restic(entry).tags == frozenset()


def test_snapshot_from_restic_entry_without_time_raises() -> None:
    with pytest.raises(ValueError, match="time"):
        Snapshot.from_restic({"id": "x"})


@pytest.mark.parametrize(
    "field, value",
    [
        ("weekly_day", 7),
        ("weekly_day", -1),
        ("local_keep_days", 0),
        ("a_keep_days", -3),
        ("weekly_keep_days", 1.5),
        ("max_age_days", True),
    ],
)
def test_policy_invalid_number_raises(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        Policy(**{field: value})  # type: ignore[arg-type]


def test_policy_unknown_timezone_raises() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        Policy(timezone="Mars/Olympus")


def test_policy_defaults_are_the_contracts() -> None:
    assert DEFAULT_POLICY == Policy(
        timezone="Europe/Paris",
        weekly_day=6,
        local_keep_days=7,
        a_keep_days=14,
        weekly_keep_days=35,
        monthly_keep_days=365,
        max_age_days=365,
    )


def test_local_date_0030_in_paris_is_previous_day_in_utc_gives_paris_date() -> None:
    moment = paris("2025-03-01 00:30")
    assert moment.astimezone(UTC).date() == date(2025, 2, 28)
    assert DEFAULT_POLICY.local_date(moment) == date(2025, 3, 1)


def test_local_date_naive_datetime_raises() -> None:
    with pytest.raises(ValueError, match="naive"):
        DEFAULT_POLICY.local_date(datetime(2025, 1, 1))


@pytest.mark.parametrize(
    "day, start",
    [
        (date(2025, 3, 2), date(2025, 3, 2)),  # Sunday starts its window
        (date(2025, 3, 3), date(2025, 3, 2)),  # Monday
        (date(2025, 3, 8), date(2025, 3, 2)),  # Saturday ends it
        (date(2025, 1, 1), date(2024, 12, 29)),  # across a year end
    ],
)
def test_week_start_any_day_gives_previous_sunday(day: date, start: date) -> None:
    assert DEFAULT_POLICY.week_start(day) == start


def test_week_start_monday_policy_gives_previous_monday() -> None:
    assert Policy(weekly_day=0).week_start(date(2025, 3, 2)) == date(2025, 2, 24)
