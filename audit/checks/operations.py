"""Checks on how the platform is run: restore drills, monitoring, incidents, and the verify
suite's own results."""
from __future__ import annotations

from audit.checks.common import (
    Context,
    unavailable,
)
from audit.report import Evidence, cut

# ---- restores, monitoring, incidents --------------------------------------------------------

def restores(ctx: Context) -> list[Evidence]:
    f = ctx.fact("restores")
    if not f.ok:
        return [unavailable("restores.last", f, "the restore records")]
    out = []
    for site, records in f.data.items():
        if not records:
            out.append(Evidence("restores.last", "manual",
                                f"{site}: no restore recorded on its web host yet"))
            continue
        last = records[-1]
        out.append(Evidence("restores.last", "pass" if last.get("result") == "ok" else "fail",
                            f"{site}: last restore {last.get('time')} from {last.get('from')} "
                            f"{last.get('result')} in {last.get('seconds')} s "
                            f"({len(records)} recorded)",
                            cut("; ".join(last.get("errors") or []))))
    return out


MONITORED = {"SiteDown": "availability", "SiteSlow": "response time",
             "CertExpiring": "TLS expiry", "BackupStale": "backup freshness",
             "DiskAlmostFull": "disk"}


def monitoring(ctx: Context) -> list[Evidence]:
    f = ctx.fact("monitoring")
    if not f.ok:
        return [unavailable("monitoring.state", f, "the monitoring on ops")]
    d = f.data
    missing = [f"{n} ({w})" for n, w in MONITORED.items() if n not in d.get("rules", [])]
    problems = []
    if missing:
        problems.append("no alert rule for " + ", ".join(missing))
    if d["down"]:
        problems.append(f"{len(d['down'])} target(s) down: " + ", ".join(
            f"{t['job']} {t['host'] or t['site'] or t['instance']}" for t in d["down"]))
    if d["firing"]:
        problems.append("alerts firing: " + ", ".join(f"{a['alert']} {a['where']}"
                                                      for a in d["firing"]))
    return [Evidence("monitoring.state", "fail" if problems else "pass",
                     "; ".join(problems) or f"{d['targets']} targets up, no alert firing, "
                     f"rules for {', '.join(MONITORED.values())}")]


def alert_rules(ctx: Context, names: tuple[str, ...], what: str) -> list[Evidence]:
    """The alert rules Prometheus on ops has loaded (not the files we render)."""
    check = "monitoring.rules"
    f = ctx.fact("monitoring")
    if not f.ok:
        return [unavailable(check, f, "the monitoring on ops")]
    missing = [n for n in names if n not in f.data.get("rules", [])]
    return [Evidence(check, "fail" if missing else "pass",
                     f"{what}: " + (f"no alert rule {', '.join(missing)} loaded" if missing
                                    else f"alert rule(s) {', '.join(names)} loaded on ops"))]


def incidents(ctx: Context) -> list[Evidence]:
    f = ctx.fact("incidents")
    if not f.ok:
        return [unavailable("incidents.record", f, "the incident record on ops")]
    recs = f.data
    kinds: dict[str, int] = {}
    for r in recs:
        kinds[r.get("kind", "?")] = kinds.get(r.get("kind", "?"), 0) + 1
    last = recs[-1] if recs else {}
    return [Evidence("incidents.record", "pass",
                     f"incident record on ops readable: {len(recs)} record(s) {kinds}"
                     + (f"; last {last.get('time') or last.get('started')} {last.get('kind')} "
                        f"{last.get('status')}" if last else ""))]


# ---- the verify suite ---------------------------------------------------------------------

def verify_cases(ctx: Context, module: str, only: tuple[str, ...] = ()) -> list[Evidence]:
    """The testinfra verify suite's results for one module (or some of its tests)."""
    check = f"verify:{module}" + (f"::{'|'.join(only)}" if only else "")
    f = ctx.fact("verify")
    if not f.ok:
        return [unavailable(check, f, "the verify suite (tests/verify)")]
    cases = [c for c in f.data if c["module"] == module
             and (not only or c["name"].split("[")[0] in only)]
    if not cases:
        return [Evidence(check, "manual", f"no test of {module} ran")]
    failed = [c for c in cases if c["outcome"] in ("failed", "error")]
    passed = sum(c["outcome"] == "passed" for c in cases)
    skipped = sum(c["outcome"] == "skipped" for c in cases)
    saw = f"tests/verify/{module}.py: {passed} passed, {len(failed)} failed, {skipped} skipped"
    excerpt = "\n".join(f"{c['name']}: {cut(c.get('message', ''), 200)}" for c in failed[:8])
    if failed:
        return [Evidence(check, "fail", saw, cut(excerpt))]
    return [Evidence(check, "pass" if passed else "manual", saw)]
