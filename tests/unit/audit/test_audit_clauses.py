"""Every clause id has a row (a check, or manual / n/a with the reason): issue 16."""
from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from audit.checks import SITE_PRIVILEGES, Context, Fact
from audit.clauses import CLAUSES, VERIFY_MODULES, Checks, Manual
from audit.contract import load, parse
from audit.run import grade

ROOT = Path(__file__).resolve().parents[3]


def test_clauses_every_contract_id_has_a_row() -> None:
    assert sorted(c.id for c in load()) == sorted(CLAUSES)


def test_clauses_manual_rows_say_why_and_what_to_look_at() -> None:
    manual = {k: v for k, v in CLAUSES.items() if isinstance(v, Manual)}
    assert manual and all(v.reason and v.look_at for v in manual.values())


def test_clauses_check_rows_name_a_check_except_the_report_itself() -> None:
    empty = [k for k, v in CLAUSES.items() if isinstance(v, Checks) and not v.run]
    assert empty == ["R-GDPR-10"]


def test_verify_modules_every_verify_suite_module_maps_to_known_ids() -> None:
    modules = {p.stem for p in (ROOT / "tests" / "verify").glob("test_*.py")}
    assert set(VERIFY_MODULES) == modules
    assert all(set(ids) <= set(CLAUSES) for ids in VERIFY_MODULES.values())


def test_site_privileges_same_as_the_web_helpers() -> None:
    sys.path.insert(0, str(ROOT / "onhost" / "web"))
    try:
        from hw_db import SITE_PRIVILEGES as HELPER
    finally:
        sys.path.remove(str(ROOT / "onhost" / "web"))
    assert set(HELPER) == SITE_PRIVILEGES


def test_grade_id_without_row_gives_a_fail_row(prod) -> None:
    clauses = parse("| R-NEW-1 | something new | v |\n| R-GDPR-10 | audit | v |\n")
    rows = grade(clauses, Context({}, prod, datetime.now(UTC)))
    assert [(r.id, r.status) for r in rows] == [("R-NEW-1", "fail"), ("R-GDPR-10", "fail")]
    assert "no row" in rows[0].evidence[0].saw and "R-NEW-1" in rows[1].evidence[0].saw


def test_grade_no_collector_ran_every_live_row_manual_none_crashes(prod) -> None:
    """Each collector absent (no monitoring, hosts unreachable...): manual with the reason."""
    facts = {n: Fact(False, error=f"{n} is down") for n in
             ("hosts", "backups", "backup_status", "restores", "monitoring", "incidents",
              "updates", "ca", "tls", "verify", "stacks")}
    rows = {r.id: r for r in grade(load(), Context(facts, prod, datetime.now(UTC)))}
    assert len(rows) == 34
    assert rows["R-HOST-4"].status == "manual"
    assert "monitoring on ops could not be read: monitoring is down" in rows["R-HOST-4"].reason
    assert rows["R-BKP-1"].status == "manual" and rows["R-INC-3"].status == "manual"
    assert rows["R-MNT-2"].status == "manual" and "update log" in rows["R-MNT-2"].reason
    # Read from the inventory alone: still graded.
    assert rows["R-GDPR-7"].status == "pass" and rows["R-HOST-2"].status == "manual"
    assert not [r.id for r in rows.values() if r.status == "fail"]
