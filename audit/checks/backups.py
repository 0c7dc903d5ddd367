"""Checks on the backups of every tier: freshness, age, weekly/monthly points, content,
off-site append-only mode, repository checks."""
from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from audit.checks.common import (
    KEEP_DAYS_MAX,
    LOG_PATH,
    STALE_HOURS,
    TIERS,
    WEEKLY_DAYS_MAX,
    Context,
    age_text,
    host_facts,
    parse_time,
    unavailable,
)
from audit.report import Evidence, cut

# ---- backups ------------------------------------------------------------------------------

def _snapshots(ctx: Context, check: str) -> tuple[dict[str, dict[str, Any]], list[Evidence]]:
    f = ctx.fact("backups")
    if not f.ok:
        return {}, [unavailable(check, f, "the backup repositories")]
    out = []
    for site, tiers in f.data.items():
        for tier, t in tiers.items():
            if t.get("error"):
                out.append(Evidence(check, "fail", f"{site} {tier}: repository not read: "
                                    f"{cut(t['error'], 300)}"))
    return f.data, out


def newest(ctx: Context, tier: str) -> list[Evidence]:
    check = f"backups.newest.{tier}"
    data, out = _snapshots(ctx, check)
    limit = timedelta(hours=STALE_HOURS[tier])
    for site, tiers in data.items():
        snaps = (tiers.get(tier) or {}).get("snapshots")
        if snaps is None:
            continue
        if not snaps:
            out.append(Evidence(check, "fail", f"{site} {tier}: no snapshot"))
            continue
        t = max(parse_time(s["time"]) for s in snaps)
        out.append(Evidence(check, "pass" if ctx.now - t <= limit else "fail",
                            f"{site} {tier}: newest snapshot {age_text(t, ctx.now)} old "
                            f"(at most {STALE_HOURS[tier]} h), {len(snaps)} snapshot(s)"))
    return out


def oldest(ctx: Context) -> list[Evidence]:
    data, out = _snapshots(ctx, "backups.oldest")
    limit = timedelta(days=KEEP_DAYS_MAX)
    for site, tiers in data.items():
        for tier in TIERS:
            snaps = (tiers.get(tier) or {}).get("snapshots")
            if not snaps:
                continue
            old = min(snaps, key=lambda s: parse_time(s["time"]))
            t = parse_time(old["time"])
            out.append(Evidence("backups.oldest", "pass" if ctx.now - t <= limit else "fail",
                                f"{site} {tier}: oldest snapshot {age_text(t, ctx.now)} old "
                                f"({old.get('short_id', old.get('id', '')[:8])}, at most "
                                f"{KEEP_DAYS_MAX} days)"))
    return out


def weekly(ctx: Context) -> list[Evidence]:
    data, out = _snapshots(ctx, "backups.weekly")
    limit = timedelta(days=WEEKLY_DAYS_MAX)
    for site, tiers in data.items():
        snaps = (tiers.get("b") or {}).get("snapshots")
        if snaps is None:
            continue
        weeklies = [s for s in snaps if "weekly" in (s.get("tags") or [])
                    and "monthly" not in (s.get("tags") or [])]
        late = [s for s in weeklies if ctx.now - parse_time(s["time"]) > limit]
        out.append(Evidence("backups.weekly", "fail" if late else "pass",
                            f"{site} b: {len(weeklies)} weekly snapshot(s) (not monthly), "
                            f"{len(late)} older than {WEEKLY_DAYS_MAX} days"))
    return out


def monthly(ctx: Context) -> list[Evidence]:
    """Each month on B: its monthly snapshot is its first (Europe/Paris calendar)."""
    data, out = _snapshots(ctx, "backups.monthly")
    tz = ZoneInfo(ctx.inv.backup_timezone)
    for site, tiers in data.items():
        snaps = (tiers.get("b") or {}).get("snapshots")
        if snaps is None:
            continue
        months: dict[str, list[dict[str, Any]]] = {}
        for s in snaps:
            if "safety" in (s.get("tags") or []):
                continue
            months.setdefault(f"{parse_time(s['time']).astimezone(tz):%Y-%m}", []).append(s)
        problems = []
        for month, items in sorted(months.items()):
            marked = [s for s in items if "monthly" in (s.get("tags") or [])]
            if not marked:
                problems.append(f"{month}: no monthly snapshot")
                continue
            first = min(parse_time(s["time"]) for s in marked)
            # The same run's two snapshots (database, files) are a minute or so apart.
            earlier = [s for s in items if "monthly" not in (s.get("tags") or [])
                       and parse_time(s["time"]) < first - timedelta(minutes=10)]
            if earlier:
                problems.append(f"{month}: {len(earlier)} snapshot(s) before the monthly one")
        out.append(Evidence("backups.monthly", "fail" if problems else "pass",
                            f"{site} b: " + ("; ".join(problems) or
                                             f"months {', '.join(sorted(months)) or 'none'}: "
                                             "each one's first backup is its monthly")))
    return out


def content(ctx: Context) -> list[Evidence]:
    """The newest local backup holds the dump, the files, the code and the host's config."""
    data, out = _snapshots(ctx, "backups.content")
    for site, tiers in data.items():
        local = tiers.get("local") or {}
        snaps = local.get("snapshots")
        if not snaps:
            continue
        kinds = {}
        for s in sorted(snaps, key=lambda s: parse_time(s["time"])):
            for k in ("db", "files"):
                if k in (s.get("tags") or []):
                    kinds[k] = s
        want = set(local.get("expect_paths", []))
        got = set((kinds.get("files") or {}).get("paths") or [])
        problems = []
        if "db" not in kinds:
            problems.append("no database snapshot")
        if "files" not in kinds:
            problems.append("no files snapshot")
        elif want - got:
            problems.append(f"files snapshot lacks {', '.join(sorted(want - got))}")
        listing = local.get("listing") or []
        private = local.get("private_files", "")
        if kinds.get("files") and private and not any(p == private or p.startswith(
                private + "/") for p in listing):
            problems.append(f"no private file ({private}) in the newest files snapshot")
        db_paths = (kinds.get("db") or {}).get("paths") or []
        out.append(Evidence("backups.content", "fail" if problems else "pass",
                            f"{site} local: " + ("; ".join(problems) or
                                                 f"database {', '.join(db_paths)} and files "
                                                 f"{', '.join(sorted(got))} "
                                                 f"({len(listing)} entries)")))
    return out


def no_logs(ctx: Context) -> list[Evidence]:
    data, out = _snapshots(ctx, "backups.no_logs")
    for site, tiers in data.items():
        local = tiers.get("local") or {}
        listing = local.get("listing")
        if listing is None:
            continue
        logs = [p for p in listing if LOG_PATH.search(p)]
        out.append(Evidence("backups.no_logs", "fail" if logs else "pass",
                            f"{site} local: {len(listing)} entries in the newest files "
                            f"snapshot, {len(logs)} log file(s)", cut("\n".join(logs[:20]))))
    return out


def offsite(ctx: Context) -> list[Evidence]:
    """Storage servers: each site's principal runs the append-only forced command (R-BKP-7)."""
    hosts, out = host_facts(ctx, "backups.offsite")
    for name, h in hosts.items():
        if ctx.inv.host(name).role != "storage":
            continue
        st = h.get("storage", {})
        problems = []
        for site in (s.name for s in ctx.inv.sites):
            line = st.get("principals", {}).get(site, "")
            if "backup.serve" not in line or f"--site {site}" not in line:
                problems.append(f"{site}: principal without the serve forced command "
                                f"({cut(line, 120) or 'no principals file'})")
        if not st.get("append_only"):
            problems.append("the served repository is not append-only (no --append-only in "
                            "backup/serve.py on the host)")
        if st.get("password_auth") != "no":
            problems.append(f"passwordauthentication {st.get('password_auth')!r}")
        out.append(Evidence("backups.offsite", "fail" if problems else "pass",
                            f"{name}: " + ("; ".join(problems) or
                                           "every site's certificate principal runs "
                                           "backup.serve (rclone serve restic --append-only) "
                                           "over SSH, certificates only")))
    return out


def repository_checks(ctx: Context) -> list[Evidence]:
    """The storage servers' last `restic check` (backup.rotate --check), from their status."""
    f = ctx.fact("backup_status")
    if not f.ok:
        return [unavailable("backups.check", f, "the storage servers' status")]
    out = []
    for site, parts in f.data.items():
        for tier in ("a", "b"):
            steps = ((parts.get(tier) or {}).get("last_run") or {}).get("steps") or {}
            step = steps.get("check")
            if step is None:
                out.append(Evidence("backups.check", "manual",
                                    f"{site} {tier}: no restic check recorded yet"))
            else:
                result = "ok" if step.get("ok") else f"FAILED: {step.get('error')}"
                out.append(Evidence("backups.check", "pass" if step.get("ok") else "fail",
                                    f"{site} {tier}: last restic check {result} "
                                    f"({step.get('seconds')} s)"))
    return out
