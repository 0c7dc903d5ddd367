"""The audit's rows and its two outputs: audit.md (for a person: the summary table first)
and audit.json (for a machine, checked against report.schema.json).

A row is one clause id. Its status comes from its evidence, one item per check that ran:
  fail     a check saw the clause broken (the report's exit code is then non-zero)
  manual   a person must look: the clause cannot be checked by a machine (site settings,
           a procedure), or what would check it is absent or unreachable (no monitoring,
           no restore ever recorded); the row says why and what to look at
  pass     every check that grades it ran and saw it held
  n/a      the clause does not apply to this environment (the row says why)
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema

STATUSES = ("pass", "fail", "manual", "n/a")
SCHEMA_FILE = Path(__file__).with_name("report.schema.json")
EXCERPT = 600  # characters of output kept per evidence item


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cut(text: str, limit: int = EXCERPT) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass(frozen=True)
class Evidence:
    check: str  # which check ran ("backups.oldest", "verify:test_sshd", ...)
    status: str  # pass | fail | manual
    saw: str  # what it saw, one sentence
    excerpt: str = ""  # a short excerpt of the output it read
    time: str = field(default_factory=now)

    def __post_init__(self) -> None:
        if self.status not in ("pass", "fail", "manual"):
            raise ValueError(f"evidence {self.check}: status {self.status!r} is not pass, "
                             "fail or manual")


@dataclass(frozen=True)
class Row:
    id: str
    clause: str
    status: str
    evidence: tuple[Evidence, ...] = ()
    reason: str = ""  # manual / n/a: why
    look_at: str = ""  # manual: what a person must look at

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["evidence"] = [asdict(e) for e in self.evidence]
        return d


def combine(evidence: list[Evidence] | tuple[Evidence, ...]) -> str:
    """fail if any check failed; manual if any could not run (or none did); else pass."""
    statuses = {e.status for e in evidence}
    if "fail" in statuses:
        return "fail"
    if not statuses or "manual" in statuses:
        return "manual"
    return "pass"


@dataclass
class Report:
    environment: str
    started: str
    finished: str
    rows: list[Row]
    collectors: dict[str, dict[str, Any]]  # name -> {ok, seconds, error}
    access: dict[str, Any] = field(default_factory=dict)  # who can log in where (R-INC-3)

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.rows) for s in STATUSES}

    @property
    def ok(self) -> bool:
        return not any(r.status == "fail" for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        return {"schema": 1, "environment": self.environment, "started": self.started,
                "finished": self.finished, "counts": self.counts(),
                "automated": sum(r.status in ("pass", "fail") for r in self.rows),
                "collectors": self.collectors, "access": self.access,
                "rows": [r.as_dict() for r in self.rows]}


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


def validate(doc: dict[str, Any]) -> None:
    """jsonschema.ValidationError naming the field when `doc` is not a valid audit.json."""
    jsonschema.validate(doc, schema())


SYMBOL = {"pass": "pass", "fail": "**FAIL**", "manual": "manual", "n/a": "n/a"}


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def markdown(report: Report) -> str:
    c = report.counts()
    lines = [f"# Audit of the hosting contract: {report.environment}", "",
             f"Run from {report.started} to {report.finished} (UTC) by `fab audit`. "
             f"{len(report.rows)} clauses: {c['pass']} pass, {c['fail']} fail, "
             f"{c['manual']} to check by hand, {c['n/a']} not applicable.", "",
             "## Summary", "", "| clause | what the contract asks | status | in short |",
             "|---|---|---|---|"]
    for r in report.rows:
        if r.status in ("manual", "n/a"):
            brief = r.reason
        else:
            bad = [e for e in r.evidence if e.status == "fail"]
            brief = "; ".join(e.saw for e in (bad or r.evidence))
        lines.append(f"| {r.id} | {_cell(r.clause)} | {SYMBOL[r.status]} | "
                     f"{_cell(cut(brief, 220))} |")
    lines += access_markdown(report.access)
    lines += ["", "Status: **pass** a check ran on the live platform and saw the clause held; "
              "**FAIL** a check saw it broken; **manual** a person must look (why and where "
              "is in the details); **n/a** the clause does not apply here.", "",
              "## Details", ""]
    for r in report.rows:
        lines += [f"### {r.id}: {SYMBOL[r.status]}", "", r.clause, ""]
        if r.reason:
            lines.append(f"- why {r.status}: {r.reason}")
        if r.look_at:
            lines.append(f"- a person must look at: {r.look_at}")
        for e in r.evidence:
            lines.append(f"- `{e.check}` ({e.time}): {e.status}: {e.saw}")
            if e.excerpt:
                lines += ["", "  ```", *("  " + x for x in e.excerpt.splitlines()), "  ```"]
        lines.append("")
    lines += ["## Collectors", "", "| collector | result | seconds |", "|---|---|---|"]
    for name, info in report.collectors.items():
        error = _cell(cut(info.get("error", ""), 200))
        result = "ok" if info.get("ok") else f"unavailable: {error}"
        lines.append(f"| {name} | {result} | {info.get('seconds', 0):.1f} |")
    return "\n".join(lines) + "\n"


def access_markdown(access: dict[str, Any]) -> list[str]:
    """Who can log in where (R-INC-3), in full: per host the principals sshd accepts and the
    user CA it trusts, the certificates valid now, and every database account's grants."""
    if not access:
        return []
    lines = ["", "## Who can log in where (R-INC-3)", "",
             "| host | role | login user | principals accepted | user CA trusted | "
             "revoked serials (KRL) |", "|---|---|---|---|---|---|"]
    for name, h in access.get("hosts", {}).items():
        if h.get("error"):
            lines.append(f"| {name} | {h.get('role', '')} | not read: {_cell(cut(h['error'], 120))}"
                         " | | | |")
            continue
        lines.append(f"| {name} | {h['role']} | {h['login_user']} | "
                     f"{', '.join(h['principals']) or 'none'} | {_cell(h['user_ca'])} | "
                     f"{', '.join(h['krl_serials']) or 'none'} |")
    certs = access.get("certificates")
    if certs is not None:
        lines += ["", "Certificates of the user CA valid now (from its register; revoked ones "
                  "left out):", "", "| serial | key id | principals | valid until (UTC) |",
                  "|---|---|---|---|"]
        lines += [f"| {c['serial']} | {_cell(c['key_id'])} | {', '.join(c['principals'])} | "
                  f"{c['until']} |" for c in certs]
    dbs = access.get("databases", {})
    if dbs:
        lines += ["", "Database accounts (MariaDB, per web host; password hashes removed):", "",
                  "| host | account | grants |", "|---|---|---|"]
        for host, accounts in dbs.items():
            for a in accounts:
                lines.append(f"| {host} | {a['account']} | "
                             f"{_cell(' / '.join(a['grants']))} |")
    return lines


def write(report: Report, out: Path) -> tuple[Path, Path]:
    """audit.md and audit.json in `out` (created 0700: the report names accounts and hosts)."""
    doc = report.as_dict()
    validate(doc)
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    out.chmod(0o700)  # an existing directory too (the verify suite's files may have made it)
    md, js = out / "audit.md", out / "audit.json"
    md.write_text(markdown(report))
    js.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return md, js
