"""The release snapshot's decisions (onhost/web/hw_dbsnap.py) on plain data: the atomic
swap statement, which snapshots are kept, how a restored database is checked (issue 11,
section 2; R-INC-1)."""
from __future__ import annotations

import hashlib
import os

import hw_dbsnap
import pytest
from hw_util import HelperError


def test_swap_sql_moves_every_table_in_one_statement():
    out = hw_dbsnap.swap_sql("site", "site_rollback", "site_failed",
                             ["fixture_state", "fixture_update_3"], ["fixture_state"])
    assert out.count("RENAME TABLE") == 1 and out.endswith(";")
    assert "`site`.`fixture_update_3` TO `site_failed`.`fixture_update_3`" in out
    assert "`site`.`fixture_state` TO `site_failed`.`fixture_state`" in out
    assert "`site_rollback`.`fixture_state` TO `site`.`fixture_state`" in out
    # live tables leave before the side tables take their names
    assert out.index("TO `site_failed`.`fixture_state`") < out.index("TO `site`.`fixture_state`")


def test_swap_sql_empty_side_database_refused():
    with pytest.raises(HelperError, match="has no table"):
        hw_dbsnap.swap_sql("site", "site_rollback", "site_failed", ["t"], [])


def test_swap_sql_unsafe_table_name_refused():
    with pytest.raises(HelperError, match="unsafe SQL identifier"):
        hw_dbsnap.swap_sql("site", "site_rollback", "site_failed", ["t`; DROP DATABASE x"],
                           ["t"])


def test_side_names_leading_dash_or_too_long_refused():
    with pytest.raises(HelperError, match="unsafe"):
        hw_dbsnap.side_names("-site")
    with pytest.raises(HelperError, match="unsafe"):
        hw_dbsnap.side_names("d" * 60)  # d..._rollback passes MariaDB's 64 characters
    assert hw_dbsnap.side_names("participation") == ("participation_rollback",
                                                     "participation_failed")


def test_snapshots_to_prune_keeps_newest_and_protected():
    names = [f"2026010{d}T000000Z-{'a' * 12}.sql" for d in range(1, 6)]
    names += [f"20260101T000000Z-{'a' * 12}.json", "notes.txt", "x.sql.part"]
    doomed = hw_dbsnap.snapshots_to_prune(names, keep=3, protect=(f"20260101T000000Z-{'a' * 12}",))
    assert doomed == [f"20260102T000000Z-{'a' * 12}"]


def test_state_differences_same_state_none():
    state = {"fingerprint": "f" * 64, "versions": {"hosting_fixture_schema": [["1", "2"]]}}
    assert hw_dbsnap.state_differences(state, dict(state)) == []


def test_state_differences_version_rows_and_fingerprint_named():
    want = {"fingerprint": "a" * 64, "versions": {"hosting_fixture_schema": [["1", "2"]]}}
    got = {"fingerprint": "b" * 64, "versions": {"hosting_fixture_schema": [["1", "3"]]}}
    out = hw_dbsnap.state_differences(want, got)
    assert out[0].startswith("schema fingerprint bbbbbbbbbbbb instead of aaaaaaaaaaaa")
    assert "hosting_fixture_schema: [['1', '3']] instead of [['1', '2']]" in out[1]


def test_fingerprint_column_type_change_differs():
    rows = [["fixture_state", "name", "varchar(64)", "NO", "PRI"]]
    wider = [["fixture_state", "name", "varchar(128)", "NO", "PRI"]]
    assert hw_dbsnap.fingerprint(rows) != hw_dbsnap.fingerprint(wider)
    assert hw_dbsnap.fingerprint(rows) == hw_dbsnap.fingerprint([list(rows[0])])


def test_restore_snapshot_with_wrong_sha256_refused_before_any_sql(tmp_path, monkeypatch):
    dump = tmp_path / "20260101T000000Z-aaaaaaaaaaaa.sql"
    dump.write_text("-- a dump\n-- Dump completed\n")
    ran = []
    monkeypatch.setattr(hw_dbsnap, "run", lambda argv, **kw: ran.append(argv))
    meta = {"path": str(dump), "sha256": hashlib.sha256(b"other").hexdigest()}
    with pytest.raises(HelperError, match="recorded .*: not loaded"):
        hw_dbsnap.Snapshots(str(tmp_path), "site").restore(meta)
    assert ran == []


def test_prune_old_release_deletes_dump_record_and_failed_tables(tmp_path):
    rids = [f"2026010{d}T000000Z-{'b' * 12}" for d in range(1, 5)]
    for rid in rids:
        (tmp_path / f"{rid}.sql").write_text("x")
        (tmp_path / f"{rid}.json").write_text("{}")
    (tmp_path / f"{rids[0]}.failed.sql").write_text("x")
    assert hw_dbsnap.Snapshots(str(tmp_path), "site").prune(keep=3) == rids[:1]
    assert sorted(os.listdir(tmp_path)) == sorted(f"{r}.{e}" for r in rids[1:]
                                                  for e in ("json", "sql"))


def test_keep_failed_tables_error_never_fails_the_way_back(tmp_path, monkeypatch):
    def broken(*_a, **_kw):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(hw_dbsnap.Snapshots, "_keep_failed", broken)
    snaps = hw_dbsnap.Snapshots(str(tmp_path), "site")
    out = snaps._keep_failed_safely("site_failed", str(tmp_path / "x.sql"))
    assert out.startswith("database site_failed (kept:") and "No space left" in out
