"""An independent oracle: what each tier must hold, recomputed straight from the contract.

Deliberately written differently from backup/: plain sets of local dates, weeks as
ordinal arithmetic, months as (year, month) pairs, no restic entries and no tags.
One backup a day, so a date stands for a snapshot.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from backup.policy import Policy


def firsts_of_weeks(taken: set[date], weekly_day: int) -> set[date]:
    """R-BKP-3: earliest backup of each 7-day window beginning on `weekly_day`."""
    # date(1, 1, 1) has ordinal 1 and is a Monday, so weekday w <=> ordinal % 7 == (w + 1) % 7.
    weeks: dict[int, list[date]] = defaultdict(list)
    for day in taken:
        weeks[(day.toordinal() - weekly_day - 1) // 7].append(day)
    return {min(days) for days in weeks.values()}


def firsts_of_months(taken: set[date]) -> set[date]:
    """R-BKP-5: earliest backup of each calendar month."""
    months: dict[tuple[int, int], list[date]] = defaultdict(list)
    for day in taken:
        months[(day.year, day.month)].append(day)
    return {min(days) for days in months.values()}


def expected_tiers(taken: set[date], today: date, policy: Policy) -> dict[str, set[date]]:
    """Dates each tier holds after the rotation of `today`, given every backup ever taken."""

    def age(day: date) -> int:
        return today.toordinal() - day.toordinal()

    alive = {d for d in taken if age(d) <= policy.max_age_days}  # R-BKP-6, R-GDPR-3
    weeklies = firsts_of_weeks(taken, policy.weekly_day)
    monthlies = firsts_of_months(taken)

    def plus_newest(kept: set[date], pool: set[date]) -> set[date]:
        return kept | ({max(pool)} if pool else set())

    local = {d for d in alive if age(d) < policy.local_keep_days}
    tier_a = {d for d in alive if age(d) < policy.a_keep_days}
    on_b = alive & (weeklies | monthlies)
    tier_b = {d for d in on_b if d in weeklies and age(d) <= policy.weekly_keep_days} | {
        d for d in on_b if d in monthlies and age(d) <= policy.monthly_keep_days
    }
    return {
        "local": plus_newest(local, alive),
        "a": plus_newest(tier_a, alive),
        "b": plus_newest(tier_b, on_b),
    }
