"""backup.restore_ledger: a restore from A or B chooses from the storage server's ledger, never
from the snapshots' own claims (issue 19; R-INC-1, R-GDPR-9)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backup.restore_choose import choose as choose_on_host
from backup.restore_db import RestoreError
from backup.restore_ledger import ChooseError, choose

T0 = datetime(2026, 3, 1, 2, 20, tzinfo=UTC)


def entry(n: int, kind: str, declared: datetime, arrival: datetime, suspect: tuple[str, ...] = (),
          host: str = "web-demo") -> dict:
    return {"id": f"{n:02x}" * 32, "declared": declared.isoformat().replace("+00:00", "Z"),
            "arrival": arrival.isoformat(), "host": host, "tags": [kind],
            "suspect": list(suspect), "gone": None}


def night(n: int, day: int, suspect: tuple[str, ...] = (), late: timedelta = timedelta(0)
          ) -> list[dict]:
    when = T0 + timedelta(days=day)
    return [entry(2 * n, "db", when, when + timedelta(minutes=4) + late, suspect),
            entry(2 * n + 1, "files", when, when + timedelta(minutes=5) + late, suspect)]


GENUINE = [*night(1, 0), *night(2, 1), *night(3, 2)]


def test_choose_newest_genuine_night_by_arrival() -> None:
    got = choose(GENUINE, "web-demo")
    assert (got.db, got.files) == (f"{6:02x}" * 32, f"{7:02x}" * 32) and got.skipped == ()


def test_choose_forged_pair_dated_before_at_is_skipped_with_its_reasons() -> None:
    # Forged on day 5 (arrival), claiming day 1.5: arrival says it is newer than --at.
    forged = [entry(90, "db", T0 + timedelta(days=1, hours=12), T0 + timedelta(days=5),
                    ("backdated",)),
              entry(91, "files", T0 + timedelta(days=1, hours=12), T0 + timedelta(days=5),
                    ("backdated",))]
    got = choose([*GENUINE, *forged], "web-demo")
    assert got.db == f"{6:02x}" * 32 and len(got.skipped) == 2
    assert all("backdated" in s for s in got.skipped)
    at = choose([*GENUINE, *forged], "web-demo", at=T0 + timedelta(days=1, hours=13))
    assert at.db == f"{4:02x}" * 32  # day 1 arrived before --at; the fake arrived after


def test_choose_before_compromise_takes_newest_arrived_before() -> None:
    got = choose(GENUINE, "web-demo", before=T0 + timedelta(days=2))
    assert got.db == f"{4:02x}" * 32


def test_choose_allow_suspect_takes_the_named_pair_and_says_so() -> None:
    late = night(4, 3, suspect=("backdated",), late=timedelta(hours=30))
    got = choose([*GENUINE, *late], "web-demo", allow_suspect=(f"{8:02x}" * 4, f"{9:02x}" * 4))
    assert got.db == f"{8:02x}" * 32 and len(got.allowed) == 2


def test_choose_half_suspect_night_is_not_complete() -> None:
    rows = [*night(1, 0)]
    rows[1] = {**rows[1], "suspect": ["paths"]}
    with pytest.raises(ChooseError, match="no complete genuine backup.*paths"):
        choose(rows, "web-demo")


def test_choose_foreign_host_and_gone_entries_ignored() -> None:
    rows = [*GENUINE[:2], *[{**e, "host": "web-other"} for e in night(5, 9)],
            *[{**e, "gone": "2026-03-20T00:00:00+00:00"} for e in night(6, 8)]]
    assert choose(rows, "web-demo").db == f"{2:02x}" * 32


def test_choose_bad_allow_suspect_names_the_option() -> None:
    with pytest.raises(ChooseError, match="--allow-suspect"):
        choose(GENUINE, "web-demo", allow_suspect=("xyz",))


def listing(rows: list[dict]) -> list[dict]:
    return [{"id": r["id"], "time": r["declared"], "hostname": r["host"], "tags": r["tags"]}
            for r in rows]


def test_on_host_choose_two_ids_takes_exactly_that_pair() -> None:
    twin = entry(99, "files", T0, T0)  # a forged files half with the same declared time
    snaps = listing([*night(1, 0), twin])
    db, files = choose_on_host(snaps, "web-demo", None, [f"{2:02x}" * 4, f"{3:02x}" * 4])
    assert (db["id"][:2], files["id"][:2]) == ("02", "03")


def test_on_host_choose_two_ids_of_one_kind_refused() -> None:
    snaps = listing([*night(1, 0), *night(2, 1)])
    with pytest.raises(RestoreError, match="both are db"):
        choose_on_host(snaps, "web-demo", None, [f"{2:02x}" * 4, f"{4:02x}" * 4])
