"""Collect, grade, write: `fab audit` (tasks/audit_tasks.py) and the lab test call run_audit.

Every clause id of the contract gets one row: from its checks (audit/clauses.py) run on what
the collectors gathered, or `manual` / `n/a` with the reason. An id the table does not know
(the contract grew) is a `fail` row saying so: the report never silently skips a clause.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit import collect
from audit.checks import Context, Fact, who_logs_in
from audit.clauses import CLAUSES, Checks, Manual, NotApplicable
from audit.contract import Clause, load, short
from audit.report import Evidence, Report, Row, combine, now, write


class AuditError(RuntimeError):
    pass


def grade(clauses: Iterable[Clause], ctx: Context,
          table: Mapping[str, Checks | Manual | NotApplicable] = CLAUSES) -> list[Row]:
    rows = []
    clauses = list(clauses)
    for cl in clauses:
        rule = table.get(cl.id)
        text = short(cl)
        if rule is None:
            rows.append(Row(cl.id, text, "fail", (Evidence(
                "audit.table", "fail", f"{cl.id} is in the contract but audit/clauses.py has "
                "no row for it: no check, no manual reason"),)))
        elif isinstance(rule, Manual):
            rows.append(Row(cl.id, text, "manual", reason=rule.reason, look_at=rule.look_at))
        elif isinstance(rule, NotApplicable):
            rows.append(Row(cl.id, text, "n/a", reason=rule.reason))
        elif cl.id == "R-GDPR-10":
            continue  # graded last, from the others
        else:
            evidence: list[Evidence] = []
            for check in rule.run:
                try:
                    evidence += check(ctx)
                except Exception as exc:  # noqa: BLE001 -- a check's bug is the row's reason
                    evidence.append(Evidence(getattr(check, "__name__", "check"), "manual",
                                             f"the check itself failed: "
                                             f"{type(exc).__name__}: {exc}"))
            status = combine(evidence)
            reason = ""
            if status == "manual":
                reason = "; ".join(dict.fromkeys(e.saw for e in evidence
                                                 if e.status == "manual"))[:400]
            rows.append(Row(cl.id, text, status, tuple(evidence), reason=reason,
                            look_at=rule.note))
    if any(cl.id == "R-GDPR-10" for cl in clauses):
        graded = sum(r.status in ("pass", "fail") for r in rows)
        missing = [cl.id for cl in clauses if cl.id not in table]
        cl = next(c for c in clauses if c.id == "R-GDPR-10")
        rows.append(Row(cl.id, short(cl), "fail" if missing else "pass", (Evidence(
            "audit.report", "fail" if missing else "pass",
            f"this report: one row for each of the contract's {len(clauses)} clause ids, "
            f"{graded + 1} graded by checks on the live platform"
            + (f"; ids without a row: {', '.join(missing)}" if missing else "")),)))
        order = {c.id: i for i, c in enumerate(clauses)}
        rows.sort(key=lambda r: order[r.id])
    return rows


def gather(inv: Any, access: Any, creds: Any, out: Path, skip: Iterable[str] = (),
           emit: Callable[[str], None] = print) -> dict[str, Fact]:
    """Every collector (those in `skip` recorded as skipped), the verify suite beside the
    others."""
    skip = set(skip)
    unknown = skip - set(collect.COLLECTORS)
    if unknown:
        raise AuditError(f"--skip: unknown collector(s) {', '.join(sorted(unknown))}; "
                         f"collectors: {', '.join(collect.COLLECTORS)}")
    jobs: dict[str, Callable[[], Any]] = {
        "hosts": lambda: collect.hosts(inv, access),
        "backups": lambda: collect.backups(inv, access),
        "backup_status": lambda: collect.backup_status(inv, access),
        "restores": lambda: collect.restores(inv, access),
        "monitoring": lambda: collect.monitoring(inv, access),
        "incidents": lambda: collect.incidents(inv, access),
        "updates": lambda: collect.updates(inv, access),
        "ca": lambda: collect.ca_register(creds.ca_dir),
        "tls": lambda: collect.tls(inv),
        "stacks": collect.stacks,
        "verify": lambda: collect.verify(inv, creds, out),
    }
    facts = {n: Fact(False, error="skipped (--skip)") for n in jobs if n in skip}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {n: pool.submit(collect.timed, fn) for n, fn in jobs.items() if n not in skip}
        for name, fut in futures.items():
            facts[name] = fut.result()
            f = facts[name]
            emit(f"audit: {name}: {'ok' if f.ok else 'unavailable: ' + f.error[:200]} "
                 f"({f.seconds:.1f} s)")
    return {n: facts[n] for n in jobs}


def run_audit(env: str = "lab", inventory: str = "", identity: str = "", ca_dir: str = "",
              out: str | Path = "", skip: Iterable[str] = (), contract: str = "",
              emit: Callable[[str], None] = print) -> tuple[Report, Path, Path]:
    from engine.access import Access, credentials
    from engine.inventory import load as load_inventory

    started = now()
    clauses = load(Path(contract) if contract else None)
    inv = load_inventory(env, inventory or None)
    creds = credentials(env, identity, ca_dir, inv=inv)
    out_dir = Path(out) if out else default_out(env)
    access = Access(inv, creds)
    try:
        facts = gather(inv, access, creds, out_dir, skip, emit)
    finally:
        access.close()
    ctx = Context(facts, inv, datetime.now(UTC))
    rows = grade(clauses, ctx)
    label = env if env == inv.environment else f"{env} (inventory of {inv.environment})"
    report = Report(label, started, now(), rows,
                    {n: {"ok": f.ok, "seconds": f.seconds, **({"error": f.error} if f.error
                                                              else {})}
                     for n, f in facts.items()}, who_logs_in(ctx))
    md, js = write(report, out_dir)
    return report, md, js


def default_out(env: str) -> Path:
    return Path.home() / ".cache" / "hosting" / "audit" / env
