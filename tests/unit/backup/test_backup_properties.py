"""Random histories through the real policy code, checked against the contract's rules.

Histories have gaps (single failed days and long runs of failures), start near DST
changes, leap days (2024-02-29, 2028-02-29), month and year ends, and back up at
awkward local times (00:30 is still yesterday in UTC; 02:30 is skipped or doubled by DST).
Policies are the contract's or smaller random ones, so short histories still reach
every rule (max age, monthly age, weekly age) and every number is exercised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Any

from backup_oracle import expected_tiers, firsts_of_months, firsts_of_weeks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backup.policy import DEFAULT_POLICY, Policy
from backup.simulate import backup_time, dates_by_tier, simulate
from backup.snapshots import parse_restic_time
from backup.tags import MONTHLY, WEEKLY

ANCHORS = [
    date(2024, 2, 20),  # leap day 2024-02-29
    date(2028, 2, 10),  # leap day 2028-02-29
    date(2025, 3, 20),  # DST starts 2025-03-30
    date(2025, 10, 20),  # DST ends 2025-10-26
    date(2024, 12, 20),  # year end
    date(2027, 1, 25),  # month end, then the short February
]
TIMES = [time(0, 0), time(0, 30), time(2, 30), time(3, 15), time(23, 30), time(23, 59)]


@dataclass(frozen=True)
class Scenario:
    start: date
    days: int
    skip: frozenset[date]
    at: time
    policy: Policy
    journal: list[dict[str, Any]] = field(default_factory=list, compare=False)

    @property
    def today(self) -> date:
        return self.start + timedelta(days=self.days - 1)

    def run(self) -> dict[str, list[date]]:
        repos = simulate(self.start, self.days, self.skip, self.at, self.policy, self.journal)
        return {t: [date.fromisoformat(d) for d in ds] for t, ds in dates_by_tier(repos).items()}

    def taken(self) -> set[date]:
        return {self.policy.local_date(parse_restic_time(s["time"])) for s in self.journal}


small_policies = st.builds(
    Policy,
    weekly_day=st.integers(0, 6),
    local_keep_days=st.integers(1, 10),
    a_keep_days=st.integers(1, 20),
    weekly_keep_days=st.integers(1, 50),
    monthly_keep_days=st.integers(25, 120),
    max_age_days=st.integers(25, 130),
)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    policy = draw(st.one_of(st.just(DEFAULT_POLICY), small_policies))
    horizon = max(policy.max_age_days, policy.monthly_keep_days) + 70
    start = draw(
        st.one_of(
            st.sampled_from(ANCHORS).map(lambda d: d - timedelta(days=horizon // 2)),
            st.dates(min_value=date(2023, 1, 1), max_value=date(2029, 12, 31)),
        )
    )
    days = draw(st.integers(1, horizon))
    # Failure runs: mostly short, some longer than a week or a month.
    runs = draw(
        st.lists(
            st.tuples(st.integers(0, days - 1), st.sampled_from([1, 1, 2, 3, 6, 8, 20, 40])),
            max_size=8,
        )
    )
    skip = frozenset(
        start + timedelta(days=offset + i) for offset, length in runs for i in range(length)
    )
    at = draw(st.one_of(st.sampled_from(TIMES), st.times().map(lambda t: t.replace(second=0))))
    return Scenario(start, days, skip, at.replace(microsecond=0), policy)


PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(scenarios())
def test_simulate_random_histories_hold_exactly_the_oracle_sets(scenario: Scenario) -> None:
    tiers = scenario.run()
    expected = expected_tiers(scenario.taken(), scenario.today, scenario.policy)
    for tier, dates in tiers.items():
        assert dates == sorted(expected[tier]), tier


@PROPERTY
@given(scenarios())
def test_simulate_random_histories_keep_every_invariant(scenario: Scenario) -> None:
    tiers = scenario.run()
    policy, today, taken = scenario.policy, scenario.today, scenario.taken()
    tags = {
        policy.local_date(parse_restic_time(s["time"])): set(s["tags"]) for s in scenario.journal
    }

    def age(day: date) -> int:
        return (today - day).days

    # R-BKP-6, R-GDPR-3: nothing older than max age anywhere, whatever else happens.
    for tier, dates in tiers.items():
        assert all(age(d) <= policy.max_age_days for d in dates), tier
    # R-BKP-4: weeklies on B within 35 days, unless also monthly or B's newest.
    for day in tiers["b"]:
        assert tags[day] & {WEEKLY, MONTHLY}, day
        if MONTHLY not in tags[day] and day != max(tiers["b"]):
            assert age(day) <= policy.weekly_keep_days, day
    # R-BKP-5: each month's first backup is its monthly, on B while young enough.
    for first in firsts_of_months(taken):
        if age(first) <= min(policy.monthly_keep_days, policy.max_age_days):
            assert first in tiers["b"], first
    # Failed backups never empty a tier: the newest stays unless past max age.
    for tier, pool in (("local", taken), ("a", taken), ("b", {d for d in taken if tags[d]})):
        if pool and age(max(pool)) <= policy.max_age_days:
            assert max(pool) in tiers[tier], tier
    # R-BKP-1, R-BKP-2: every backup of the last days is there.
    assert {d for d in taken if age(d) < policy.local_keep_days} <= set(tiers["local"])
    assert {d for d in taken if age(d) < policy.a_keep_days} <= set(tiers["a"])


@PROPERTY
@given(scenarios())
def test_tags_for_new_snapshot_random_histories_tag_exactly_first_of_week_and_month(
    scenario: Scenario,
) -> None:
    scenario.run()
    taken = scenario.taken()
    weeklies = firsts_of_weeks(taken, scenario.policy.weekly_day)
    monthlies = firsts_of_months(taken)
    for snapshot in scenario.journal:
        day = scenario.policy.local_date(parse_restic_time(snapshot["time"]))
        assert (WEEKLY in snapshot["tags"]) == (day in weeklies), day
        assert (MONTHLY in snapshot["tags"]) == (day in monthlies), day


@settings(max_examples=60, deadline=None)
@given(
    day=st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
    at=st.sampled_from(TIMES),
)
def test_backup_time_any_day_and_time_stays_on_that_local_date(day: date, at: time) -> None:
    assert DEFAULT_POLICY.local_date(backup_time(day, at)) == day
