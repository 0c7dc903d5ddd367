"""backup.suspect: which snapshots on a storage server are suspect (issue 19; R-INC-1, R-GDPR-9)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backup.suspect import Expectation, reasons

ARRIVAL = datetime(2026, 3, 10, 3, 20, tzinfo=UTC)
EXPECT = Expectation("web-demo", {"files": frozenset({"/srv/demo", "/etc/nginx"}),
                                  "db": frozenset({"/demo.sql"})})


def judge(declared: datetime | None = ARRIVAL - timedelta(minutes=5), host: str = "web-demo",
          tags: tuple[str, ...] = ("db", "dump-trailer=1"), paths: tuple[str, ...] = ("/demo.sql",),
          text: str = "") -> tuple[str, ...]:
    return reasons(declared, text, ARRIVAL, host, tags, paths, EXPECT)


def test_reasons_runner_snapshot_on_time_is_not_suspect() -> None:
    assert judge() == ()
    assert judge(tags=("files", "weekly", "monthly", "ids-sha256=ab12"),
                 paths=("/etc/nginx", "/srv/demo")) == ()


def test_reasons_declared_in_the_future_beyond_skew_is_suspect() -> None:
    assert "future" in judge(ARRIVAL + timedelta(minutes=11))[0]
    assert judge(ARRIVAL + timedelta(minutes=9)) == ()


def test_reasons_declared_long_before_arrival_is_backdated() -> None:
    assert "backdated" in judge(ARRIVAL - timedelta(hours=27))[0]
    assert judge(ARRIVAL - timedelta(hours=25)) == ()


def test_reasons_unreadable_time_is_suspect() -> None:
    assert "cannot be read" in judge(None, text="0000-01-01T00:00:00Z")[0]


@pytest.mark.parametrize("change, words", [
    ({"host": "web-other"}, "not the site's host"),
    ({"tags": ("db", "files")}, "one kind"),
    ({"tags": ("pwned",)}, "one kind"),
    ({"tags": ("db", "keep-forever")}, "never writes"),
    ({"paths": ("/etc/shadow",)}, "are not the db snapshot's"),
])
def test_reasons_claims_the_runner_never_makes_are_suspect(change: dict, words: str) -> None:
    assert any(words in r for r in judge(**change))


def test_from_config_bad_expect_names_the_field() -> None:
    with pytest.raises(ValueError, match="expect.paths"):
        Expectation.from_config({"expect": {"paths": ["x"]}}, "web-demo")
    got = Expectation.from_config({"expect": {"window_hours": 48}}, "web-demo")
    assert got.window == timedelta(hours=48) and got.host == "web-demo"


def test_readable_drops_entries_whose_time_cannot_be_read() -> None:
    from backup.snapshots import readable

    entries = [{"id": "a", "time": "2025-01-05T02:15:00Z"},
               {"id": "b", "time": "0000-01-01T00:00:00Z"}, {"id": "c", "time": "garbage"},
               {"id": "d"}]
    assert [e["id"] for e in readable(entries)] == ["a"]
