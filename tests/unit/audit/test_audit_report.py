"""audit.md (summary table first) and audit.json (valid against its schema); the exit code."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from invoke.exceptions import Exit

from audit.report import Evidence, Report, Row, combine, markdown, validate, write


def report(*rows: Row) -> Report:
    return Report("lab", "2026-12-04T10:00:00Z", "2026-12-04T10:01:00Z", list(rows),
                  {"hosts": {"ok": True, "seconds": 1.5},
                   "monitoring": {"ok": False, "seconds": 0.2, "error": "no Prometheus"}})


PASS = Row("R-BKP-1", "A daily backup", "pass", (Evidence("backups.newest.local", "pass",
                                                          "villeparisis local: 2 h old"),))
FAIL = Row("R-GDPR-6", "Firewall", "fail", (Evidence("hosts.firewall", "fail",
                                                     "proxy: tcp [8080] from anywhere"),))
MANUAL = Row("R-GDPR-12", "Analytics", "manual", reason="the sites' own settings",
             look_at="the Drupal admin")


@pytest.mark.parametrize(("statuses", "expected"), [
    (["pass", "fail", "manual"], "fail"), (["pass", "manual"], "manual"), (["pass"], "pass"),
    ([], "manual")])
def test_combine_statuses_fail_then_manual_then_pass(statuses: list[str], expected: str) -> None:
    assert combine([Evidence("x", s, "") for s in statuses]) == expected


def test_evidence_unknown_status_rejected() -> None:
    with pytest.raises(ValueError, match="status 'ok' is not pass"):
        Evidence("x", "ok", "")


def test_write_outputs_schema_valid_json_and_summary_first(tmp_path: Path) -> None:
    md, js = write(report(PASS, FAIL, MANUAL), tmp_path / "out")
    doc = json.loads(js.read_text())
    validate(doc)
    assert doc["counts"] == {"pass": 1, "fail": 1, "manual": 1, "n/a": 0}
    assert doc["automated"] == 2 and doc["rows"][1]["evidence"][0]["check"] == "hosts.firewall"
    text = md.read_text()
    assert text.index("## Summary") < text.index("## Details") < text.index("## Collectors")
    assert "| R-GDPR-6 | Firewall | **FAIL** | proxy: tcp [8080] from anywhere |" in text
    assert "| R-GDPR-12 | Analytics | manual | the sites' own settings |" in text
    assert "| monitoring | unavailable: no Prometheus | 0.2 |" in text
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o700


def test_validate_manual_row_without_reason_rejected() -> None:
    doc = report(Row("R-MNT-2", "Updates", "manual")).as_dict()
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


def test_validate_pass_row_without_evidence_rejected() -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate(report(Row("R-MNT-3", "Stack", "pass")).as_dict())


def test_markdown_pipe_in_evidence_escaped() -> None:
    row = Row("R-X-1", "a | b", "pass", (Evidence("c", "pass", "x | y"),))
    assert "| R-X-1 | a \\| b | pass | x \\| y |" in markdown(report(row))


def test_audit_task_a_failed_clause_exits_1(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    from tasks import audit_tasks

    monkeypatch.setattr(audit_tasks, "run_audit", lambda *a, **k: (
        report(PASS, FAIL), tmp_path / "audit.md", tmp_path / "audit.json"))
    with pytest.raises(Exit) as exc:
        audit_tasks.audit.body(None)
    assert exc.value.code == 1


def test_audit_task_no_failed_clause_exits_0(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path, capsys) -> None:
    from tasks import audit_tasks

    monkeypatch.setattr(audit_tasks, "run_audit", lambda *a, **k: (
        report(PASS, MANUAL), tmp_path / "audit.md", tmp_path / "audit.json"))
    audit_tasks.audit.body(None)
    assert "1 pass, 0 fail, 1 manual" in capsys.readouterr().out


def test_audit_task_unknown_collector_exits_2_naming_it(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    from audit.run import gather
    from tasks import audit_tasks

    def fake(*a, **k):
        return gather(None, None, None, Path("/nonexistent"), ["hosts", "nagios"])

    monkeypatch.setattr(audit_tasks, "run_audit", fake)
    with pytest.raises(Exit, match="unknown collector.*nagios") as exc:
        audit_tasks.audit.body(None)
    assert exc.value.code == 2


def test_markdown_access_section_lists_hosts_certificates_accounts() -> None:
    r = report(PASS)
    r.access = {"hosts": {"ops": {"role": "ops", "login_user": "admin",
                                  "principals": ["sysadmin"], "user_ca": "ca-comment",
                                  "krl_serials": []},
                          "proxy": {"role": "proxy", "error": "timed out"}},
                "certificates": [{"serial": 3, "key_id": "a@b", "principals": ["sysadmin"],
                                  "until": "2026-12-05 07:00"}],
                "databases": {"web-x": [{"account": "x@localhost", "grants": ["GRANT USAGE"]}]}}
    text = markdown(r)
    validate(r.as_dict())
    assert text.index("## Who can log in where (R-INC-3)") < text.index("## Details")
    assert "| ops | ops | admin | sysadmin | ca-comment | none |" in text
    assert "| proxy | proxy | not read: timed out | | | |" in text
    assert "| 3 | a@b | sysadmin | 2026-12-05 07:00 |" in text
    assert "| web-x | x@localhost | GRANT USAGE |" in text


def test_write_existing_directory_closed_to_others(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir(mode=0o755)
    write(report(PASS), out)
    assert out.stat().st_mode & 0o777 == 0o700
