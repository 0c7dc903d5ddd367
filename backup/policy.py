"""The rotation's numbers, and the calendar arithmetic every rule shares.

All dates are LOCAL dates in the sites' time zone (Europe/Paris): "a day", "a week"
and "a month" in the contract are the town's calendar, not UTC and not 24-hour spans,
so a DST change never shifts a snapshot into the wrong day (R-BKP-1..6).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class Policy:
    """Every number of the rotation; the defaults are the contract's (§3.1).

    Ages are whole days: age = today's local date - the snapshot's local date.
    """

    timezone: str = "Europe/Paris"
    # First day of the 7-day window whose first snapshot is the weekly (R-BKP-3).
    # Monday=0 ... Sunday=6, as datetime.date.weekday().
    weekly_day: int = 6
    local_keep_days: int = 7  # local tier keeps age < 7 (R-BKP-1)
    a_keep_days: int = 14  # tier A keeps age < 14 (R-BKP-2)
    weekly_keep_days: int = 35  # tier B keeps weeklies with age <= 35 (R-BKP-4)
    monthly_keep_days: int = 365  # tier B keeps monthlies with age <= 365 (R-BKP-5)
    max_age_days: int = 365  # nothing older survives anywhere (R-BKP-6, R-GDPR-3)

    def __post_init__(self) -> None:
        if not 0 <= self.weekly_day <= 6:
            raise ValueError(f"weekly_day must be 0 (Monday) .. 6 (Sunday), not {self.weekly_day}")
        for name in (
            "local_keep_days",
            "a_keep_days",
            "weekly_keep_days",
            "monthly_keep_days",
            "max_age_days",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number of days, not {value!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {self.timezone!r}") from error

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # ZoneInfo caches instances: cheap

    def local_date(self, moment: datetime) -> date:
        """The calendar date of an aware instant in the sites' time zone."""
        return _local_date(moment, self.timezone)

    def age_days(self, taken: date, today: date) -> int:
        """Whole calendar days between two local dates (negative if taken after today)."""
        return (today - taken).days

    def week_start(self, day: date) -> date:
        """First day of the 7-day window (starting on weekly_day) that holds `day`."""
        return day - timedelta(days=(day.weekday() - self.weekly_day) % 7)

    @staticmethod
    def month_start(day: date) -> date:
        return day.replace(day=1)


DEFAULT_POLICY = Policy()


@lru_cache(maxsize=8192)  # the same snapshots are dated again at every run of the simulator
def _local_date(moment: datetime, timezone: str) -> date:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: give a time zone")
    return moment.astimezone(ZoneInfo(timezone)).date()
