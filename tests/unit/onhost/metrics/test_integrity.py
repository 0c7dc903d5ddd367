"""onhost/metrics/integrity.py (issue 17): debsums' period from its Debian default file, its
findings with the ignore list, AIDE's last report, the metrics."""
from __future__ import annotations

import integrity
import textfile

from backup.metrics import parse_text

AIDE_LOG = """\
Start timestamp: 2026-12-04 06:25:01 +0000 (AIDE 0.19.1)
AIDE found differences between database and filesystem!!

Summary:
  Total number of entries:\t41230
  Added entries:\t\t5
  Removed entries:\t\t1
  Changed entries:\t\t12
Start timestamp: 2026-12-05 06:25:01 +0000 (AIDE 0.19.1)
AIDE found NO differences between database and filesystem. Looks okay!!
"""


def test_debsums_period_weekly_in_seconds() -> None:
    assert integrity.debsums_period("# comment\nCRON_CHECK=weekly\n") == 7 * 86400


def test_debsums_period_never_or_unknown_off() -> None:
    assert integrity.debsums_period("CRON_CHECK=never\n") is None
    assert integrity.debsums_period("CRON_CHECK=hourly\n") is None
    assert integrity.debsums_period("") is None


def test_debsums_findings_changed_and_missing_minus_ignored() -> None:
    stdout = "/usr/bin/passwd\n/usr/sbin/sshd\n"
    stderr = ("debsums: missing file /usr/lib/x86_64-linux-gnu/libfoo.so.1 (from libfoo "
              "package)\ndebsums: no md5sums for bar\n")
    assert integrity.debsums_findings(stdout, stderr, ignore=[r"^/usr/sbin/"]) == [
        "/usr/bin/passwd", "/usr/lib/x86_64-linux-gnu/libfoo.so.1"]


def test_aide_report_last_run_without_differences_zero() -> None:
    assert integrity.aide_report(AIDE_LOG) == (0, 0, 0)


def test_aide_report_last_run_with_differences_counted() -> None:
    first = AIDE_LOG.split("Start timestamp: 2026-12-05")[0]
    assert integrity.aide_report(first) == (5, 1, 12)


def test_aide_report_no_run_or_unfinished_none() -> None:
    assert integrity.aide_report("") is None
    assert integrity.aide_report("Start timestamp: 2026-12-05\nAIDE found differences\n") is None


def test_debsums_due_first_run_then_after_the_period_less_slack() -> None:
    week = 7 * 86400
    assert integrity.debsums_due(None, week, 1000.0)
    last = {"at": 1000.0, "files": [], "ok": True}
    assert not integrity.debsums_due(last, week, 1000.0 + 86400)
    assert integrity.debsums_due(last, week, 1000.0 + week - 3600)
    assert not integrity.debsums_due(None, None, 1000.0)


def test_debsums_due_after_a_failed_run_next_time() -> None:
    failed = {"at": 1000.0, "files": [], "ok": False}
    assert integrity.debsums_due(failed, 7 * 86400, 1000.0 + 86400)


def test_metrics_debsums_and_aide_rendered_with_tool_labels() -> None:
    text = textfile.render(integrity.metrics(
        {"at": 1_700_000_000.0, "files": ["/usr/bin/passwd"], "ok": True}, (1, 0, 2)))
    samples = parse_text(text)
    assert samples[("hosting_integrity_changed_files", (("tool", "debsums"),))] == 1
    assert samples[("hosting_integrity_changed_files", (("tool", "aide"),))] == 3
    assert samples[("hosting_integrity_check_success", (("tool", "debsums"),))] == 1


def test_main_runs_debsums_when_due_and_records_failure(tmp_path, monkeypatch) -> None:
    default = tmp_path / "debsums"
    default.write_text("CRON_CHECK=weekly\n")
    monkeypatch.setattr(integrity, "DEBSUMS_DEFAULT", str(default))
    monkeypatch.setattr(integrity, "AIDE_LOG", str(tmp_path / "none.log"))
    monkeypatch.setattr(integrity, "DEBSUMS_IGNORE", str(tmp_path / "none"))
    monkeypatch.setenv(textfile.ENV_DIR, str(tmp_path))
    monkeypatch.setattr(integrity, "run_debsums", lambda ignore: None)  # debsums did not run
    assert integrity.main(["--state", str(tmp_path / "state")]) == 1
    samples = parse_text((tmp_path / integrity.PROM).read_text())
    assert samples[("hosting_integrity_check_success", (("tool", "debsums"),))] == 0
    assert integrity.load_state(str(tmp_path / "state"))["ok"] is False
