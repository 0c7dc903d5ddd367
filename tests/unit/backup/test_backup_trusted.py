"""backup.trusted: the rotation's view of a repository a compromised host wrote to (issue 19)."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from backup import ledger
from backup.policy import DEFAULT_POLICY
from backup.rotation import select
from backup.suspect import Expectation
from backup.trusted import rotation_view

NOW = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)
EXPECT = Expectation("web-demo")


def book(rows: list[tuple[int, str, datetime, str]]) -> tuple[ledger.Ledger, list[dict]]:
    """rows: (n, declared text, arrival, host) -> the folded ledger and restic's listing."""
    lines, listing = [], []
    for n, declared, arrival, host in rows:
        sid = f"{n:064x}"
        lines.append(json.dumps({"event": "seen", "id": sid, "arrival": arrival.isoformat(),
                                 "first_seen": arrival.isoformat(), "declared": declared,
                                 "host": host, "tags": ["db"], "paths": ["/demo.sql"]}))
        listing.append({"id": sid, "time": declared, "hostname": host, "tags": ["db"]})
    return ledger.fold(lines, EXPECT), listing


def night(days_ago: int) -> datetime:
    return NOW - timedelta(days=days_ago, minutes=30)


def z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_rotation_view_genuine_time_is_the_earlier_of_declared_and_arrival() -> None:
    arrival = night(3)
    led, listing = book([(1, z(arrival + timedelta(minutes=5)), arrival, "web-demo")])
    view = rotation_view(listing, led, "web-demo", DEFAULT_POLICY, NOW)
    assert [s["time"] for s in view.genuine] == [arrival.isoformat()]


def test_rotation_view_future_dated_snapshot_is_never_genuine() -> None:
    led, listing = book([(1, z(night(20)), night(20), "web-demo"),
                         (2, "2099-01-01T00:00:00Z", night(1), "web-demo")])
    view = rotation_view(listing, led, "web-demo", DEFAULT_POLICY, NOW)
    assert [s["id"][-1] for s in view.genuine] == ["1"] and view.suspect == (f"{2:064x}",)
    # Tier A forgets nothing of the genuine series: day 20 is its newest backup.
    assert select("a", view.genuine, NOW, DEFAULT_POLICY).forget == ()


def test_rotation_view_stranger_arrived_over_max_age_is_expired() -> None:
    old = NOW - timedelta(days=DEFAULT_POLICY.max_age_days + 2)
    led, listing = book([(1, z(old), old, "web-other"), (2, z(night(1)), night(1), "web-other")])
    view = rotation_view(listing, led, "web-demo", DEFAULT_POLICY, NOW)
    assert view.others_expired == (f"{1:064x}",) and view.others_kept == (f"{2:064x}",)


declared_texts = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 1, 1),
                 timezones=st.just(UTC)).map(z),
    st.sampled_from(["0000-01-01T00:00:00Z", "garbage", "", "2025-13-40T99:99:99Z"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(declared_texts, st.integers(0, 800),
                          st.sampled_from(["web-demo", "web-other"])), max_size=25))
def test_rotation_view_hostile_lists_never_crash_and_never_lift_a_suspect(
        rows: list[tuple[str, int, str]]) -> None:
    led, listing = book([(n, text, NOW - timedelta(days=age), host)
                         for n, (text, age, host) in enumerate(rows)])
    view = rotation_view(listing, led, "web-demo", DEFAULT_POLICY, NOW)
    selection = select("a", view.genuine, NOW, DEFAULT_POLICY)
    genuine_ids = {s["id"] for s in view.genuine}
    assert not genuine_ids & set(view.suspect)
    kept = set(selection.keep_ids) | set(view.others_kept)
    for entry in led.present():  # everything arrived over max_age ago is forgotten
        age = DEFAULT_POLICY.age_days(DEFAULT_POLICY.local_date(entry.arrival),
                                      DEFAULT_POLICY.local_date(NOW))
        if age > DEFAULT_POLICY.max_age_days:
            assert entry.id not in kept
