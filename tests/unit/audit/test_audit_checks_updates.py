"""R-MNT-1 and R-MNT-2 graded from `fab update`'s log on ops (audit/checks/operations.py,
issue 15): qualified updates that reached prod, how recent, and their maintenance windows."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from audit import checks as c
from audit.checks import Context, Fact

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def rec(site: str, days: float, result: str = "live", qualification: str = "passed",
        window: float | None = 2.0) -> dict:
    return {"kind": "update", "site": site, "result": result, "qualification": qualification,
            "ref": "v2", "artifact": "ab" * 32, "maintenance_seconds": window,
            "time": (NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")}


def ctx(prod, records) -> Context:
    return Context({"updates": Fact(True, records)}, prod, NOW)


def statuses(evidence) -> dict[str, str]:
    return {e.saw.split(":")[0]: e.status for e in evidence}


def test_update_qualified_recent_qualified_updates_pass(prod) -> None:
    ev = c.update_qualified(ctx(prod, [rec("villeparisis", 10), rec("participation", 3)]))
    assert statuses(ev) == {"villeparisis": "pass", "participation": "pass"}


def test_update_qualified_no_update_live_manual(prod) -> None:
    ev = c.update_qualified(ctx(prod, [rec("villeparisis", 1, result="reverted",
                                           qualification="passed")]))
    assert statuses(ev) == {"villeparisis": "manual", "participation": "manual"}


def test_update_qualified_unqualified_update_fails(prod) -> None:
    ev = c.update_qualified(ctx(prod, [rec("villeparisis", 1, qualification="failed"),
                                       rec("participation", 1)]))
    assert statuses(ev)["villeparisis"] == "fail"


def test_update_qualified_last_update_too_old_fails(prod) -> None:
    ev = c.update_qualified(ctx(prod, [rec("villeparisis", c.UPDATE_EVERY_DAYS + 1),
                                       rec("participation", 1)]))
    assert statuses(ev) == {"villeparisis": "fail", "participation": "pass"}


def test_update_qualified_log_unreadable_manual(prod) -> None:
    ev = c.update_qualified(Context({"updates": Fact(False, error="ops down")}, prod, NOW))
    assert [e.status for e in ev] == ["manual"]


def test_update_window_long_window_fails_naming_it(prod) -> None:
    ev = c.update_window(ctx(prod, [rec("villeparisis", 5, window=1.5),
                                    rec("villeparisis", 1, window=c.UPDATE_WINDOW_MAX + 5),
                                    rec("participation", 1, window=3.0)]))
    assert statuses(ev) == {"villeparisis": "fail", "participation": "pass"}
    vil = next(e for e in ev if e.saw.startswith("villeparisis"))
    assert "longest maintenance window 65.0 s over 2 update(s)" in vil.saw


def test_update_window_not_measured_manual(prod) -> None:
    ev = c.update_window(ctx(prod, [rec("villeparisis", 1, window=None),
                                    rec("participation", 1)]))
    assert statuses(ev) == {"villeparisis": "manual", "participation": "pass"}
