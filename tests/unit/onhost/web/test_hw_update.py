"""The web helper's part of `fab update` (onhost/web/hw_update.py, issue 15): the e-mail scan
query, which sanitizing steps run on which tables, the PHP fatal error count after a mark,
and the revert's refusals. The SQL itself runs against MariaDB in tests/lab/test_update.py."""
from __future__ import annotations

import json
from pathlib import Path

import hw_update
import pytest
from hw_util import HelperError


def test_email_scan_sql_allowed_domain_cut_before_the_match():
    out = hw_update.email_scan_sql("site", [("users", "mail"), ("people", "note")],
                                   "example.invalid")
    assert out.count("SELECT") == 2 and " UNION ALL\n" in out and out.endswith(";\n")
    assert "REGEXP_REPLACE(`mail`, '[A-Za-z0-9._%+-]+@example\\\\.invalid" in out
    assert "FROM `site`.`people`" in out


def test_email_scan_sql_no_text_column_empty():
    assert hw_update.email_scan_sql("site", [], "example.invalid") == ""


def test_email_scan_sql_unsafe_column_refused():
    with pytest.raises(HelperError, match="unsafe SQL identifier"):
        hw_update.email_scan_sql("site", [("users", "mail`; DROP")], "example.invalid")


@pytest.fixture
def fake_db(monkeypatch):
    ran: list[str] = []
    monkeypatch.setattr(hw_update.hw_dbsnap, "tables",
                        lambda db: ["cache_data", "cache_render", "sessions", "people"])
    monkeypatch.setattr(hw_update.hw_dbsnap, "sql",
                        lambda statements, database=None, timeout=0: ran.append(statements) or [])
    return ran


def steps_file(tmp_path: Path, steps: list[dict]) -> str:
    path = tmp_path / "steps.json"
    path.write_text(json.dumps(steps))
    return str(path)


def test_sanitize_missing_table_skipped_and_pattern_expanded(fake_db, tmp_path, monkeypatch):
    monkeypatch.setattr(hw_update, "leftover_emails", lambda db, domain: {})
    out = hw_update.sanitize("site", steps_file(tmp_path, [
        {"table": "users_field_data", "sql": "UPDATE users_field_data SET mail = ''"},
        {"table": "sessions", "sql": "TRUNCATE TABLE sessions"},
        {"tables_like": "cache%", "sql": "TRUNCATE TABLE `{table}`"},
        {"sql": "DELETE FROM people WHERE id > 10;"}]), "example.invalid")
    assert out["skipped"] == ["users_field_data"]
    assert out["ran"] == ["sessions", "cache_data", "cache_render", "(statement)"]
    assert fake_db == ["TRUNCATE TABLE sessions;\n", "TRUNCATE TABLE `cache_data`;\n",
                       "TRUNCATE TABLE `cache_render`;\n", "DELETE FROM people WHERE id > 10;\n"]


def test_sanitize_address_left_fails_naming_the_column(fake_db, tmp_path, monkeypatch):
    monkeypatch.setattr(hw_update, "leftover_emails", lambda db, domain: {"people.email": 2})
    with pytest.raises(HelperError, match=r"remain after sanitizing: people.email \(2\)"):
        hw_update.sanitize("site", steps_file(tmp_path, []), "example.invalid")


def test_sanitize_unreadable_steps_names_the_option(tmp_path):
    bad = tmp_path / "steps.json"
    bad.write_text("not json")
    with pytest.raises(HelperError, match="--sql-file"):
        hw_update.sanitize("site", str(bad), "example.invalid")


def test_fatals_only_lines_after_the_mark_counted(tmp_path):
    log = tmp_path / "php-fpm.log"
    log.write_text("PHP Fatal error: old one\n")
    mark = hw_update.logmark((str(log),))
    with log.open("a") as f:
        f.write("NOTICE: ok\nPHP Fatal error:  Uncaught Error: Call to undefined function\n")
    out = hw_update.fatals(mark, (str(log),))
    assert out["count"] == 1 and "Uncaught Error" in out["lines"][0]


def test_fatals_log_rotated_since_mark_read_whole(tmp_path):
    log = tmp_path / "error.log"
    log.write_text("x" * 1000 + "\n")
    mark = hw_update.logmark((str(log),))
    log.write_text("PHP Parse error: new file\n")
    assert hw_update.fatals(mark, (str(log),))["count"] == 1


def test_fatals_missing_log_none(tmp_path):
    missing = str(tmp_path / "none.log")
    assert hw_update.fatals(hw_update.logmark((missing,)), (missing,)) == {"count": 0,
                                                                          "lines": []}


class FakeSite:
    def __init__(self, tmp_path: Path, current: str, history: list[str]) -> None:
        self.snapshot_dir = str(tmp_path)
        self.releases = str(tmp_path / "releases")
        self._current, self._history = current, history

    def current_id(self):
        return self._current

    def history(self):
        return self._history

    def existing(self):
        return {r: "sha" for r in self._history}


def test_revert_other_release_live_refused(tmp_path):
    site = FakeSite(tmp_path, "20261205T010000Z-aaaaaaaaaaaa", [])
    with pytest.raises(HelperError, match="refusing to revert"):
        hw_update.revert(site, "20261205T020000Z-bbbbbbbbbbbb")


def test_revert_without_snapshot_refused_nothing_changed(tmp_path):
    rid = "20261205T020000Z-bbbbbbbbbbbb"
    site = FakeSite(tmp_path, rid, ["20261205T010000Z-aaaaaaaaaaaa", rid])
    with pytest.raises(HelperError, match="no pre-update database snapshot"):
        hw_update.revert(site, rid)


def test_previous_release_from_history():
    site = FakeSite(Path("/nonexistent"), "c", ["a", "b", "c"])
    assert hw_update._previous(site, "c") == "b"
