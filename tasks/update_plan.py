"""`fab update`'s decisions, pure (issue 15; R-MNT-1, R-MNT-2, R-HOST-3, R-GDPR-1/4): the
sanitizing steps, the smoke checks' settings, whether to promote, what to do after prod's
checks, and the update record. Tested with plain data (tests/unit/tasks/test_update_plan.py).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from model.types import Smoke, UpdatePolicy

# Where sanitized addresses point: a reserved domain (RFC 2606) that delivers nowhere.
ALLOWED_DOMAIN = "example.invalid"

# Drupal's personal data, as `drush sql:sanitize` treats it and a little more: accounts' e-mail
# and name rewritten (uid 0, the anonymous account, has none), password hashes reset, sessions
# and the logs that hold addresses and IPs emptied, caches (which may hold rendered personal
# data) emptied, form submissions removed. `{domain}` is ALLOWED_DOMAIN.
DRUPAL_SANITIZE: tuple[dict[str, str], ...] = (
    {"table": "users_field_data",
     "sql": "UPDATE users_field_data SET mail = CONCAT('user+', uid, '@{domain}'), "
            "init = CONCAT('user+', uid, '@{domain}'), name = CONCAT('user', uid), "
            "pass = NULL WHERE uid > 0"},
    {"table": "sessions", "sql": "TRUNCATE TABLE sessions"},
    {"table": "watchdog", "sql": "TRUNCATE TABLE watchdog"},
    {"table": "flood", "sql": "TRUNCATE TABLE flood"},
    {"table": "contact_message", "sql": "TRUNCATE TABLE contact_message"},
    {"table": "webform_submission_data", "sql": "TRUNCATE TABLE webform_submission_data"},
    {"table": "webform_submission", "sql": "TRUNCATE TABLE webform_submission"},
    {"tables_like": "cache%", "sql": "TRUNCATE TABLE `{table}`"},
)
# The lab fixture's own personal data (tests/fixtures/site: hosting_fixture_people).
FIXTURE_SANITIZE: tuple[dict[str, str], ...] = (
    {"table": "hosting_fixture_people",
     "sql": "UPDATE hosting_fixture_people SET name = CONCAT('person', id), "
            "email = CONCAT('person+', id, '@{domain}'), note = NULL"},
)
PROFILES = {"drupal": DRUPAL_SANITIZE, "fixture": FIXTURE_SANITIZE}
PATH_RE = re.compile(r"/[A-Za-z0-9._~/?=&%+-]*")


class UpdateInputError(ValueError):
    """Bad input to `fab update`: the message names the option or field."""


def parse_smoke(values: Iterable[str]) -> tuple[Smoke, ...]:
    """`--smoke PATH[=MARKER]` options."""
    out = []
    for value in values:
        path, _, marker = value.partition("=")
        if not PATH_RE.fullmatch(path):
            raise UpdateInputError(f"--smoke {value!r}: PATH must start with / and hold only "
                                   "URL characters (PATH or PATH=MARKER)")
        out.append(Smoke(path, marker))
    return tuple(out)


def sanitize_steps(settings: UpdatePolicy) -> list[dict[str, str]]:
    """The steps sent to the preprod host (hw_update.sanitize), `{domain}` filled in."""
    steps: list[dict[str, str]] = []
    for name in settings.sanitize:
        if name not in PROFILES:
            raise UpdateInputError(f"--sanitize {name!r}: one of {', '.join(PROFILES)}")
        steps += [dict(s) for s in PROFILES[name]]
    for i, statement in enumerate(settings.sanitize_sql):
        if not statement.strip():
            raise UpdateInputError(f"--sanitize-sql[{i}]: empty statement")
        steps.append({"sql": statement})  # no table: run once, as given
    for s in steps:
        s["sql"] = s["sql"].replace("{domain}", settings.allowed_email_domain)
    return steps


def promote(qualification: Mapping[str, Any]) -> bool:
    """Prod is touched only when every qualification check passed."""
    checks = qualification.get("checks") or []
    return bool(checks) and all(c.get("ok") for c in checks)


def after_prod(release_result: str, checks: Sequence[Mapping[str, Any]]) -> str:
    """What follows prod's release: "live" (all good), "revert" (the release went live but a
    check failed: code and database back to the step-6 snapshot), or "rolled back" (the
    release itself failed and its own way back ran: nothing more to do)."""
    if release_result != "live":
        return "rolled back"
    return "live" if checks and all(c.get("ok") for c in checks) else "revert"


def maintenance_seconds(host_record: Mapping[str, Any]) -> float | None:
    """Seconds visitors were kept out on prod: the release's steps between maintenance on and
    off, from the host's own timings (hw_release)."""
    t = host_record.get("timings") or {}
    steps = ("maintenance-on", "db-snapshot", "post-deploy", "maintenance-off")
    if not all(s in t for s in steps):
        return None
    return round(sum(float(t[s]) for s in steps), 3)


@dataclass
class Report:
    site: str
    env: str
    preprod_env: str
    ref: str
    started: str
    artifact_sha256: str = ""
    artifact_source: str = ""
    from_release: str | None = None
    to_release: str | None = None
    steps: dict[str, float] = field(default_factory=dict)
    qualification: dict[str, Any] = field(default_factory=dict)
    prod_checks: list[dict[str, Any]] = field(default_factory=list)
    maintenance_seconds: float | None = None
    outcome: str = "started"
    errors: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The update log's line (and the incident record's, when it failed: R-INC-4)."""
        ok = self.outcome in ("live", "qualified")
        return {
            "kind": "update", "status": "resolved" if ok else "failed",
            "what": f"update of {self.site} to {self.ref} ({self.outcome})",
            "site": self.site, "result": self.outcome, "started": self.started,
            "release": self.to_release, "previous": self.from_release,
            "artifact": self.artifact_sha256, "ref": self.ref,
            "qualification": "passed" if promote(self.qualification) else "failed",
            "maintenance_seconds": self.maintenance_seconds,
            "seconds": round(sum(self.steps.values()), 3), "errors": self.errors[:10],
            "source": "fab update", "env": self.env,
        }

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def render_markdown(r: Report) -> str:
    lines = [f"# Update of {r.site} to `{r.ref}`: {r.outcome}", "",
             f"- started {r.started}, {r.env} (qualified on {r.preprod_env})",
             f"- artifact sha256 `{r.artifact_sha256}` ({r.artifact_source or 'n/a'})",
             f"- prod release {r.from_release or 'none'} → {r.to_release or 'unchanged'}",
             "- maintenance window on prod: " + (f"{r.maintenance_seconds:.2f} s"
                                                if r.maintenance_seconds is not None
                                                else "none (prod not touched)"), ""]
    for title, checks in (("Qualification on preprod", r.qualification.get("checks") or []),
                          ("Checks on prod", r.prod_checks)):
        if not checks:
            continue
        lines += [f"## {title}", "", "| check | result | detail |", "|---|---|---|"]
        lines += [f"| {c['name']} | {'ok' if c['ok'] else 'FAILED'} | "
                  f"{str(c.get('detail', '')).replace('|', '/')[:200]} |" for c in checks]
        lines.append("")
    lines += ["## Steps (seconds)", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in r.steps.items()]
    if r.errors:
        lines += ["", "## Errors", ""] + [f"- {e}" for e in r.errors]
    return "\n".join(lines) + "\n"
