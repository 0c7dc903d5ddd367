"""Checks on how the platform is run: restore drills, monitoring, incidents, updates, and the
verify suite's own results."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from audit.checks.common import (
    Context,
    age_text,
    parse_time,
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


# ---- updates (fab update's log on ops, issue 15) ---------------------------------------------

UPDATE_WINDOW_MAX = 60.0  # seconds in maintenance an update may cost (R-MNT-1: "brief")
UPDATE_EVERY_DAYS = 92  # a quarter without an update that reached prod is not "regular"


def _live_updates(ctx: Context, check: str) -> tuple[dict[str, list[dict[str, Any]]],
                                                      list[Evidence]]:
    """{site: its update records that went live}, and `manual` items for the sites that have
    none (or every site, when the log could not be read)."""
    f = ctx.fact("updates")
    if not f.ok:
        return {}, [unavailable(check, f, "the update log on ops")]
    out: dict[str, list[dict[str, Any]]] = {}
    missing = []
    for s in ctx.inv.sites:
        recs = [r for r in f.data if r.get("site") == s.name and r.get("kind") == "update"]
        live = [r for r in recs if r.get("result") == "live"]
        if live:
            out[s.name] = live
        else:
            missing.append(Evidence(check, "manual", f"{s.name}: no `fab update` has reached "
                                    f"prod yet ({len(recs)} run(s) recorded, none live)"))
    return out, missing


def update_qualified(ctx: Context) -> list[Evidence]:
    """R-MNT-2: every update that reached prod was qualified on preprod, the last one recent."""
    live, out = _live_updates(ctx, "updates.qualified")
    for site, recs in live.items():
        unqualified = [r for r in recs if r.get("qualification") != "passed"]
        last = recs[-1]
        age = ctx.now - parse_time(last.get("time") or last.get("started") or "")
        if unqualified:
            out.append(Evidence("updates.qualified", "fail", f"{site}: {len(unqualified)} "
                                "update(s) reached prod without a passed qualification"))
        elif age > timedelta(days=UPDATE_EVERY_DAYS):
            out.append(Evidence("updates.qualified", "fail", f"{site}: last update live "
                                f"{age_text(parse_time(last['time']), ctx.now)} ago (more than "
                                f"{UPDATE_EVERY_DAYS} days)"))
        else:
            out.append(Evidence("updates.qualified", "pass", f"{site}: {len(recs)} update(s) "
                                f"live, each qualified on preprod first; last {last.get('ref')} "
                                f"(artifact {str(last.get('artifact'))[:12]}) "
                                f"{age_text(parse_time(last['time']), ctx.now)} ago"))
    return out


def update_window(ctx: Context) -> list[Evidence]:
    """R-MNT-1: the maintenance window each update cost on prod, measured by the host."""
    live, out = _live_updates(ctx, "updates.window")
    for site, recs in live.items():
        windows = [float(r["maintenance_seconds"]) for r in recs
                   if r.get("maintenance_seconds") is not None]
        if not windows:
            out.append(Evidence("updates.window", "manual", f"{site}: no window measured"))
            continue
        worst = max(windows)
        out.append(Evidence("updates.window", "fail" if worst > UPDATE_WINDOW_MAX else "pass",
                            f"{site}: longest maintenance window {worst:.1f} s over "
                            f"{len(windows)} update(s) (limit {UPDATE_WINDOW_MAX:.0f} s)"))
    return out


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
