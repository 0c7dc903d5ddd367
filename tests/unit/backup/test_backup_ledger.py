"""backup.ledger: what the storage server saw of each snapshot (issue 19)."""
from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from backup import ledger
from backup.suspect import Expectation

NOW = datetime(2026, 3, 10, 3, 30, tzinfo=UTC)
EXPECT = Expectation("web-demo", {"db": frozenset({"/demo.sql"})})


def sid(n: int) -> str:
    return f"{n:064x}"


def claim(n: int, when: str, **extra: object) -> dict:
    return {"id": sid(n), "time": when, "hostname": "web-demo", "tags": ["db"],
            "paths": ["/demo.sql"], "summary": {"data_added": 1234}, **extra}


def repo_with(tmp_path: Path, *ids: int) -> Path:
    (tmp_path / "repo" / "snapshots").mkdir(parents=True)
    for n in ids:
        (tmp_path / "repo" / "snapshots" / sid(n)).write_bytes(b"x")
    return tmp_path / "repo"


def test_arrivals_reads_ctime_and_lists_names_that_are_no_snapshot(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, 1)
    (repo / "snapshots" / "README").write_text("junk")
    found, junk = ledger.arrivals(repo)
    ctime = os.stat(repo / "snapshots" / sid(1)).st_ctime
    assert found == {sid(1): datetime.fromtimestamp(ctime, UTC)} and junk == ["README"]


def test_update_records_arrival_not_the_declared_time(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, 1)
    path = tmp_path / "ledger.jsonl"
    forged = claim(1, "2020-01-01T00:00:00Z")
    book, events, _ = ledger.update(path, repo, [forged], EXPECT, NOW + timedelta(days=9999))
    entry = book.entries[sid(1)]
    assert entry.arrival.year == datetime.now(UTC).year and entry.declared.startswith("2020")
    assert entry.is_suspect and "backdated" in entry.suspect[0]
    assert entry.size == 1234 and len(events) == 1


def test_update_arrival_is_never_after_the_observers_clock(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, 1)
    book, _, _ = ledger.update(tmp_path / "l.jsonl", repo, [claim(1, "2026-03-10T03:15:00Z")],
                               EXPECT, NOW)
    assert book.entries[sid(1)].arrival == NOW and not book.entries[sid(1)].is_suspect


def test_update_second_run_adds_nothing_and_keeps_first_arrival(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, 1)
    path = tmp_path / "l.jsonl"
    ledger.update(path, repo, [claim(1, "2026-03-10T03:15:00Z")], EXPECT, NOW)
    book, events, _ = ledger.update(path, repo, [claim(1, "2026-03-10T03:15:00Z")], EXPECT,
                                    NOW + timedelta(days=3))
    assert events == [] and book.entries[sid(1)].arrival == NOW


def test_update_file_gone_is_recorded_gone(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, 1, 2)
    path = tmp_path / "l.jsonl"
    ledger.update(path, repo, [claim(1, "2026-03-10T03:15:00Z"), claim(2, "2026-03-10T03:15:00Z")],
                  EXPECT, NOW)
    (repo / "snapshots" / sid(2)).unlink()
    book, events, _ = ledger.update(path, repo, [claim(1, "2026-03-10T03:15:00Z")], EXPECT, NOW)
    assert [e["event"] for e in events] == ["gone"]
    assert [e.id for e in book.present()] == [sid(1)]


def test_update_snapshot_restic_cannot_read_is_suspect(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, 7)
    book, _, _ = ledger.update(tmp_path / "l.jsonl", repo, [], EXPECT, NOW)
    assert book.entries[sid(7)].suspect == (ledger.UNREADABLE,)


def test_update_impossible_year_zero_is_suspect_not_a_crash(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, 1)
    book, _, _ = ledger.update(tmp_path / "l.jsonl", repo, [claim(1, "0000-01-01T00:00:00Z")],
                               EXPECT, NOW)
    assert book.entries[sid(1)].declared_time is None
    assert "cannot be read" in book.entries[sid(1)].suspect[0]


def test_fold_mark_makes_arrivals_in_its_interval_suspect() -> None:
    seen = [json.dumps({"event": "seen", "id": sid(n), "arrival": (NOW + timedelta(hours=n))
                        .isoformat(), "first_seen": NOW.isoformat(), "declared":
                        (NOW + timedelta(hours=n)).isoformat().replace("+00:00", "Z"),
                        "host": "web-demo", "tags": ["db"], "paths": ["/demo.sql"]})
            for n in range(4)]
    mark = json.dumps(ledger.mark_event(NOW + timedelta(hours=1), NOW + timedelta(hours=2),
                                        "contained"))
    book = ledger.fold([*seen, mark], EXPECT)
    assert [n for n in range(4) if book.entries[sid(n)].is_suspect] == [1, 2]


@given(st.lists(st.text(max_size=80), max_size=20))
def test_fold_any_garbage_never_raises_and_counts_bad_lines(lines: list[str]) -> None:
    book = ledger.fold(lines, EXPECT)
    assert book.bad_lines <= len(lines)


def test_append_writes_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    ledger.append(path, [{"event": "gone", "id": "a", "at": NOW.isoformat()}] * 3)
    assert [json.loads(x)["id"] for x in path.read_text().splitlines()] == ["a", "a", "a"]


def test_main_mark_since_appends_a_mark_that_applies_to_later_arrivals(tmp_path: Path) -> None:
    cfg = {"site": "demo", "tier": "a", "host": "web-demo",
           "policy": {"timezone": "Europe/Paris", "weekly_day": "sunday", "local_keep_days": 7,
                      "a_keep_days": 14, "weekly_keep_days": 35, "monthly_keep_days": 365},
           "repository": str(tmp_path / "repo"), "password_file": str(tmp_path / "pw"),
           "state_dir": str(tmp_path), "lock_file": str(tmp_path / "rotate.lock")}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    seen = {"event": "seen", "id": "a" * 64, "arrival": datetime.now(UTC).isoformat(),
            "first_seen": datetime.now(UTC).isoformat(), "declared": "", "host": "web-demo",
            "tags": ["db"], "paths": []}
    ledger.append(tmp_path / ledger.LEDGER_FILE, [seen])
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert ledger.main(["--site", "demo", "--config", str(tmp_path / "cfg.json"),
                        "--mark-since", since, "--reason", "drill"]) == 0
    book = ledger.load(tmp_path / ledger.LEDGER_FILE)
    assert any("drill" in r for r in book.entries["a" * 64].suspect)
    assert ledger.main(["--site", "demo", "--config", str(tmp_path / "cfg.json"),
                        "--mark-since", "yesterday"]) == 2
