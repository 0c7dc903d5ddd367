"""What every check shares: the collected Fact, the Context a check reads, the limits the
contract and the monitoring set, and the time helpers."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audit.report import Evidence, cut

# What the model allows a site's database account (onhost/web/hw_db.py SITE_PRIVILEGES; a
# unit test keeps the two equal) and the accounts MariaDB itself needs.
SITE_PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "INDEX",
                             "ALTER", "CREATE TEMPORARY TABLES", "LOCK TABLES"})
SYSTEM_ACCOUNTS = frozenset({("root", "localhost"), ("mariadb.sys", "localhost")})
STALE_HOURS = {"local": 26, "a": 26, "b": 192}  # the monitoring's BackupStale defaults
KEEP_DAYS_MAX = 365  # R-GDPR-3 / R-BKP-6
WEEKLY_DAYS_MAX = 35  # R-BKP-4
CERT_DAYS_MIN = 21  # the monitoring's CertExpiring default
LOG_PATH = re.compile(r"(^|/)var/log(/|$)|\.log$")
TIERS = ("local", "a", "b")


@dataclass(frozen=True)
class Fact:
    """What one collector gathered: `data` when ok, else the error that stopped it."""
    ok: bool
    data: Any = None
    error: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Context:
    facts: dict[str, Fact]
    inv: Any  # engine.inventory.Inventory
    now: datetime

    def fact(self, name: str) -> Fact:
        return self.facts.get(name) or Fact(False, error=f"collector {name} did not run")


def unavailable(check: str, fact: Fact, what: str) -> Evidence:
    return Evidence(check, "manual", f"{what} could not be read: {cut(fact.error, 300)}")


def parse_time(text: str) -> datetime:
    from backup.snapshots import parse_restic_time

    return parse_restic_time(text)


def age_text(t: datetime, now: datetime) -> str:
    hours = (now - t).total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def host_facts(ctx: Context, check: str) -> tuple[dict[str, Any], list[Evidence]]:
    """The reachable hosts' facts, and a `manual` item per host that could not be read."""
    f = ctx.fact("hosts")
    if not f.ok:
        return {}, [unavailable(check, f, "the hosts")]
    out = []
    for name, h in f.data.items():
        if h.get("error"):
            out.append(Evidence(check, "manual", f"{name} unreachable: {cut(h['error'], 300)}"))
    return {n: h for n, h in f.data.items() if not h.get("error")}, out
