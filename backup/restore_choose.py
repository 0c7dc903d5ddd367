"""Which backup a restore takes (step 1 of backup/restore.py, pure): the newest night whose
database AND files snapshots are both in the repository, at or before --at, or the pair one of
whose ids starts with --snapshot (the only way to choose a safety snapshot)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from datetime import time as dtime
from typing import Any

from backup.restore_db import RestoreError
from backup.snapshots import parse_restic_time
from backup.tags import SAFETY
from backup.take import KIND_DB, KIND_FILES, series


def choose(snapshots: list[dict[str, Any]], host: str, at: datetime | None,
           snapshot: str | Sequence[str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(db, files) snapshots of the newest backup at or before `at` that has both; or the
    pair one of whose ids starts with `snapshot` (the only way to choose a safety snapshot);
    or, given two ids, exactly those two (what `fab restore` chose from the storage server's
    ledger, backup/restore_ledger.py: no other snapshot of the same declared time may stand
    in for either half)."""
    own = series(snapshots, host)
    prefixes = [snapshot] if isinstance(snapshot, str) else list(snapshot or ())
    if len(prefixes) == 2:
        return _exact_pair(own, prefixes)
    if len(prefixes) > 2:
        raise RestoreError("--snapshot: one id (its pair is found) or two (database and files)")
    if prefixes:
        return _pair_of(own, prefixes[0])
    nights: dict[datetime, dict[str, dict[str, Any]]] = {}
    for s in own:
        moment = parse_restic_time(s["time"])
        if SAFETY in s["tags"] or (at is not None and moment > at):
            continue
        kind = KIND_DB if KIND_DB in s["tags"] else KIND_FILES
        nights.setdefault(moment, {})[kind] = s
    complete = sorted(m for m, kinds in nights.items() if len(kinds) == 2)
    if not complete:
        when = f" at or before {at.isoformat()}" if at else ""
        raise RestoreError(f"no complete backup (database and files){when} in this repository")
    best = nights[complete[-1]]
    return best[KIND_DB], best[KIND_FILES]


def _exact_pair(own: list[dict[str, Any]],
                prefixes: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    pair: dict[str, dict[str, Any]] = {}
    for prefix in prefixes:
        found = _by_prefix(own, prefix)
        kind = KIND_DB if KIND_DB in found["tags"] else KIND_FILES
        if kind in pair:
            raise RestoreError(f"--snapshot {' '.join(prefixes)}: both are {kind} snapshots")
        pair[kind] = found
    if pair[KIND_DB]["time"] != pair[KIND_FILES]["time"]:
        raise RestoreError(f"--snapshot {' '.join(prefixes)}: not taken by the same night")
    return pair[KIND_DB], pair[KIND_FILES]


def _pair_of(own: list[dict[str, Any]], prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    chosen = _by_prefix(own, prefix)
    moment, is_safety = parse_restic_time(chosen["time"]), SAFETY in chosen["tags"]
    pair = {KIND_DB if KIND_DB in s["tags"] else KIND_FILES: s for s in own
            if parse_restic_time(s["time"]) == moment and (SAFETY in s["tags"]) == is_safety}
    if len(pair) != 2:
        raise RestoreError(f"--snapshot {prefix}: its database or files half is missing")
    return pair[KIND_DB], pair[KIND_FILES]


def _by_prefix(own: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    """The one snapshot of this site whose id starts with `prefix` (8+ hex digits)."""
    if len(prefix) < 8 or any(c not in "0123456789abcdef" for c in prefix):
        raise RestoreError(f"--snapshot {prefix!r}: expected at least 8 hex digits of an id")
    found = [s for s in own if s["id"].startswith(prefix)]
    if len(found) != 1:
        raise RestoreError(f"--snapshot {prefix}: {'no' if not found else 'more than one'} "
                           "snapshot of this site with that id in this repository")
    return found[0]


def parse_at(text: str, zone: Any) -> datetime:
    """A date means the end of that local day; a time without offset is local."""
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).date()
            return datetime.combine(day, dtime(23, 59, 59), tzinfo=zone)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RestoreError(f"--at {text!r}: expected YYYY-MM-DD or an ISO time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)

