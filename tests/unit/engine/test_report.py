"""What the operator reads: progress lines, check-mode details, notes, the summary table."""
from __future__ import annotations

from engine.converge import HostResult
from engine.decide import Action, HandlerRun, Note, OpResult, Plan
from engine.report import details, notes_summary, progress_line, summary_table

PLAN = Plan(actions=(Action("file:/etc/a", "write /etc/a (content)", {"kind": "write"},
                            "--- /etc/a (on host)\n+++ /etc/a (wanted)\n-x\n+y\n",
                            ("reload",)),),
            handlers=(HandlerRun("reload", {}, (0,)),), changed=("file:/etc/a",),
            unchanged=("file:/etc/b", "file:/etc/c"))


def test_progress_line_check_mode_says_would_change() -> None:
    line = progress_line(HostResult("web-x", check=True, plan=PLAN, seconds=1.25))
    assert line == "ok   web-x                1 would change, 2 unchanged  (1.2s)"


def test_progress_line_unreachable_host_says_why() -> None:
    assert progress_line(HostResult("ops", error="OSError: refused")).startswith(
        "FAIL ops                  OSError: refused")


def test_details_check_mode_lists_actions_handlers_and_the_diff() -> None:
    text = details(HostResult("web-x", check=True, plan=PLAN))
    assert "  * write /etc/a (content)  [then: reload]" in text
    assert "  * handler reload (once)" in text
    assert "-x\n+y" in text


def test_details_apply_shows_only_failures_unless_verbose() -> None:
    r = HostResult("h", plan=PLAN, outcomes=[OpResult("write /etc/a", False,
                                                      error="validation failed")])
    assert "[FAILED] write /etc/a: validation failed" in details(r)
    ok = HostResult("h", plan=PLAN, outcomes=[OpResult("write /etc/a", True, changed=True),
                                              OpResult("handler reload", True)])
    assert details(ok) == ""
    assert "[changed] write /etc/a" in details(ok, verbose=True)
    assert "[no change] handler reload" in details(ok, verbose=True)


def test_notes_summary_groups_items_and_hosts() -> None:
    plan = Plan(notes=(Note("sysctl:kernel.a", "kernel.a", "skipped in a container"),
                       Note("sysctl:kernel.b", "kernel.b", "skipped in a container"),
                       Note("service:t", "no time sync here")))
    rs = [HostResult("a", plan=plan), HostResult("b", plan=plan)]
    assert notes_summary(rs) == ["note: no time sync here [a, b]",
                                 "note: skipped in a container: kernel.a, kernel.b [a, b]"]


def test_summary_table_has_a_row_per_host_and_totals() -> None:
    rs = [HostResult("proxy", plan=PLAN, outcomes=[OpResult("w", True, True, key="file:/etc/a")],
                     seconds=2.0),
          HostResult("ops", error="down", seconds=15.0)]
    lines = summary_table(rs, 15.2, check=False).splitlines()
    assert lines[0].split() == ["host", "changed", "unchanged", "failed", "seconds"]
    assert lines[2].split() == ["proxy", "1", "2", "0", "2.0"]
    assert lines[3].split() == ["ops", "0", "0", "1", "15.0"]
    assert lines[5].split() == ["TOTAL", "1", "2", "1", "15.2"]
