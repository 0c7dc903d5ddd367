"""Which backup a restore from A or B takes, chosen from the storage server's ledger (issue 19).

Never from the snapshots' own claims: a compromised web host can write a snapshot with any
time, host and tags (backup.ledger). So `fab restore --from a|b` (tasks/backup_restore.py) reads
the ledger of the storage server and picks here, then hands the on-host restore the exact pair
(`--snapshot DB --snapshot FILES`):
  * candidates are present, genuine snapshots of the site's series (backup.suspect); a
    suspect one is skipped, with its reasons, unless the admin names it (`--allow-suspect ID`);
  * `--at T`: arrived at or before T (the storage server's clock); `--before T` (a suspected
    compromise): arrived strictly before T;
  * a night is its database and files snapshots with the same declared time, both genuine or
    allowed; the newest night by arrival wins.
R-INC-1, R-GDPR-9: the restore brings back what the storage server received, not what a host
later claimed. Pure, stdlib only: the admin side imports it, the tests feed it ledgers.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backup.tags import SAFETY

KINDS = ("db", "files")


class ChooseError(ValueError):
    """No backup fits; the message says what was looked at and skipped."""


@dataclass(frozen=True)
class Choice:
    db: str
    files: str
    declared: str
    arrival: datetime
    skipped: tuple[str, ...]  # "<id8>: why", newest first
    allowed: tuple[str, ...]  # ids taken although suspect (--allow-suspect)


def _kind(entry: Mapping[str, Any]) -> str:
    kinds = [t for t in entry.get("tags") or () if t in KINDS]
    return kinds[0] if len(kinds) == 1 else ""


def choose(entries: Sequence[Mapping[str, Any]], host: str, *, at: datetime | None = None,
           before: datetime | None = None, allow_suspect: Sequence[str] = ()) -> Choice:
    """entries: `python3 -m backup.ledger --json`'s "entries" (suspicion already judged)."""
    for prefix in allow_suspect:
        if len(prefix) < 8 or any(c not in "0123456789abcdef" for c in prefix):
            raise ChooseError(f"--allow-suspect {prefix!r}: expected 8+ hex digits of an id")
    skipped: list[tuple[datetime, str]] = []
    allowed: list[str] = []
    nights: dict[str, dict[str, tuple[str, datetime]]] = {}
    for e in entries:
        if e.get("gone"):
            continue
        arrival = datetime.fromisoformat(str(e["arrival"]))
        if (at is not None and arrival > at) or (before is not None and arrival >= before):
            continue
        if e.get("host") != host or not _kind(e) or SAFETY in (e.get("tags") or ()):
            continue
        sid = str(e["id"])
        if e.get("suspect"):
            if not any(sid.startswith(p) for p in allow_suspect):
                skipped.append((arrival, f"{sid[:8]}: {'; '.join(e['suspect'])}"))
                continue
            allowed.append(sid)
        nights.setdefault(str(e.get("declared", "")), {})[_kind(e)] = (sid, arrival)
    complete = [(max(a for _, a in pair.values()), declared, pair)
                for declared, pair in nights.items() if len(pair) == 2]
    skipped.sort(reverse=True)
    if not complete:
        limit = (f" arrived at or before {at.isoformat()}" if at else "") + (
            f" arrived before {before.isoformat()}" if before else "")
        why = ("; skipped: " + " | ".join(s for _, s in skipped[:10])
               + (f" (and {len(skipped) - 10} more)" if len(skipped) > 10 else "")
               if skipped else "")
        raise ChooseError(f"no complete genuine backup (database and files){limit} on this "
                          f"storage server{why}")
    arrival, declared, pair = max(complete, key=lambda c: (c[0], c[1]))
    used = {pair["db"][0], pair["files"][0]}
    # What would have been chosen but for its suspicion: arrived after the chosen night.
    passed = tuple(s for a, s in skipped if a >= arrival)
    return Choice(pair["db"][0], pair["files"][0], declared, arrival, passed,
                  tuple(a for a in allowed if a in used))
