"""`fab backup.status`: every site's tiers, newest snapshot ages and sizes, last runs.

Reads the status files the runners write (web hosts: status.json of each site; storage
servers: status.json of each site's rotation): monitoring reads the same files.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from engine.access import Access, credentials
from engine.inventory import Inventory, load
from roles.backup.layout import BackupLayout
from tasks.backup_setup import sudo

STALE_HOURS = 26  # a daily backup older than this is late (alert)


def _age(text: str | None, now: datetime) -> str:
    if not text:
        return "-"
    from backup.snapshots import parse_restic_time

    hours = (now - parse_restic_time(text)).total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.1f} d"


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def collect(inv: Inventory, access: Access) -> dict[str, dict[str, Any]]:
    """site -> {"web": status.json of its web host, "a": ..., "b": ...} (missing: {})."""
    out: dict[str, dict[str, Any]] = {s.name: {} for s in inv.sites}
    for s in inv.sites:
        lay = BackupLayout(s.name)
        where = [("web", inv.host(s.host), f"{lay.state}/status.json")]
        where += [(t, inv.storage_host(t), f"{lay.storage_state}/status.json")
                  for t in ("a", "b")]
        for key, host, path in where:
            res = sudo(access.connection(host), ["cat", path], warn=True)
            try:
                out[s.name][key] = json.loads(res.stdout) if res.exited == 0 else {}
            except ValueError:
                out[s.name][key] = {}
    return out


def table(data: Mapping[str, Mapping[str, Any]], now: datetime) -> list[str]:
    lines = [f"{'site':<14} {'tier':<5} {'snaps':>5} {'newest':>8} {'oldest':>8} "
             f"{'size':>10}  last run"]
    for site, parts in data.items():
        web = parts.get("web", {})
        tiers = web.get("tiers", {})
        for tier in ("local", "a", "b"):
            # A and B: the storage server's own picture (after its rotation) when it has one.
            own = parts.get(tier, {}).get("tiers", {}).get(tier) if tier != "local" else None
            t = own or tiers.get(tier) or {}
            run = (web if tier == "local" else parts.get(tier, {})).get("last_run") or {}
            if tier != "local" and not run:
                run = web.get("last_run") or {}
            result = run.get("result", "never")
            when = run.get("finished", "")
            newest = (t.get("newest") or {}).get("time")
            late = ""
            if newest and (now - _parse(newest)).total_seconds() > STALE_HOURS * 3600:
                late = "  LATE"
            if (tiers.get(tier) or {}).get("ok") is False:
                # The web host's last run failed on this tier (local: backup or rotation, its
                # errors listed below; A/B: the copy).
                late += "  FAILED" if tier == "local" else "  COPY FAILED"
            lines.append(f"{site:<14} {tier:<5} {t.get('snapshots', '-'):>5} "
                         f"{_age(newest, now):>8} {_age(t.get('oldest_time'), now):>8} "
                         f"{_size(t.get('bytes')):>10}  {result} {when}{late}")
        errors = (web.get("last_run") or {}).get("errors") or []
        for e in errors:
            lines.append(f"{'':<14} ! {e[:160]}")
    return lines


def _parse(text: str) -> datetime:
    from backup.snapshots import parse_restic_time

    return parse_restic_time(text)


def run_status(env: str = "lab", inventory: str = "", identity: str = "",
               emit: Callable[[str], None] = print, now: datetime | None = None
               ) -> dict[str, dict[str, Any]]:
    inv = load(env, inventory or None)
    access = Access(inv, credentials(env, identity, inv=inv))
    try:
        data = collect(inv, access)
    finally:
        access.close()
    for line in table(data, now or datetime.now(UTC)):
        emit(line)
    return data
