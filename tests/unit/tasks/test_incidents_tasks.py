"""`fab incidents` (tasks/incidents_tasks.py): the table, the filters, `fab -l`."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tasks.incidents_tasks import select, table

ROOT = Path(__file__).resolve().parents[3]
RECORDS = [
    {"time": "2026-12-04T20:01:30Z", "kind": "alert", "status": "firing", "what": "SiteDown",
     "site": "s", "severity": "critical", "resolved": None},
    {"time": "2026-12-04T20:05:30Z", "kind": "alert", "status": "resolved", "what": "SiteDown",
     "site": "s", "severity": "critical", "resolved": "2026-12-04T20:05:00Z"},
    {"time": "2026-12-04T21:00:00Z", "kind": "restore", "status": "resolved",
     "what": "restore of t from a (newest) " + "x" * 60, "site": "t", "host": "web-t"},
]


def test_table_one_line_per_record_long_text_cut() -> None:
    lines = table(RECORDS).splitlines()
    assert lines[0].split()[:4] == ["TIME", "KIND", "STATUS", "SEVERITY"]
    assert len(lines) == 1 + 3 + 1 and lines[-1] == "3 record(s)"
    assert "SiteDown" in lines[1] and "firing" in lines[1]
    assert "…" in lines[3] and "x" * 60 not in lines[3]


def test_select_site_kind_last_filters() -> None:
    assert [r["kind"] for r in select(RECORDS, site="s")] == ["alert", "alert"]
    assert [r["site"] for r in select(RECORDS, kind="restore")] == ["t"]
    assert select(RECORDS, last=1) == RECORDS[-1:]


def test_fab_list_shows_incidents_task() -> None:
    out = subprocess.run([sys.executable, "-m", "fabric", "-l"], cwd=ROOT, text=True,
                         capture_output=True, timeout=60).stdout
    assert any(line.split()[:1] == ["incidents"] for line in out.splitlines())
    helptext = subprocess.run([sys.executable, "-m", "fabric", "-h", "incidents"], cwd=ROOT,
                              text=True, capture_output=True, timeout=60).stdout
    assert "--json" in helptext
