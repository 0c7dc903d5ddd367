"""Read the snapshot entries of `restic snapshots --json` (restic 0.18) with the stdlib."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

# restic writes Go's RFC3339Nano: up to 9 fraction digits, trailing zeros dropped,
# offset as +02:00 (or Z). Python's datetime holds microseconds: truncate the rest.
_RESTIC_TIME = re.compile(
    r"(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<fraction>\d{1,9}))?"
    r"(?P<offset>Z|[+-]\d{2}:\d{2})"
)


@lru_cache(maxsize=4096)
def parse_restic_time(text: str) -> datetime:
    """An aware datetime from restic's time, e.g. 2025-03-30T03:15:00.123456789+02:00."""
    match = _RESTIC_TIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a restic snapshot time: {text!r}")
    fraction = (match["fraction"] or "").ljust(6, "0")[:6]
    offset = "+00:00" if match["offset"] == "Z" else match["offset"]
    return datetime.fromisoformat(f"{match['base']}.{fraction}{offset}")


@dataclass(frozen=True)
class Snapshot:
    """What the rotation needs of one snapshot."""

    id: str
    time: datetime
    tags: frozenset[str]
    # restic sets `original` on a copy (restic copy) or a rewrite (restic tag): the id of the
    # snapshot it came from, so a snapshot and all its copies share copy_key.
    original: str | None = None

    @property
    def copy_key(self) -> str:
        return self.original or self.id

    @classmethod
    def from_restic(cls, entry: Mapping[str, Any]) -> Snapshot:
        try:
            snapshot_id = entry["id"]
            time_text = entry["time"]
        except KeyError as missing:
            raise ValueError(f"restic snapshot entry without {missing}: {dict(entry)!r}") from None
        tags = tuple(entry.get("tags") or ())  # restic omits "tags" when there are none
        return _snapshot(str(snapshot_id), str(time_text), tags, entry.get("original") or None)


@lru_cache(maxsize=4096)  # Snapshot is immutable; the simulator reads the same entries daily
def _snapshot(
    snapshot_id: str, time_text: str, tags: tuple[str, ...], original: str | None
) -> Snapshot:
    return Snapshot(snapshot_id, parse_restic_time(time_text), frozenset(tags), original)


def readable(entries: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The entries whose time can be read. A storage server's listing may hold what a
    compromised web host wrote (year 0, garbage): the runner leaves those to the storage side's
    ledger (backup.ledger) instead of failing its copies (issue 19)."""
    out = []
    for entry in entries:
        try:
            parse_restic_time(str(entry.get("time", "")))
        except (ValueError, OverflowError):
            continue
        out.append(entry)
    return out


def read_snapshots(entries: Iterable[Mapping[str, Any] | Snapshot]) -> list[Snapshot]:
    """Snapshots oldest first; accepts restic JSON entries or Snapshot objects."""
    snapshots = [e if isinstance(e, Snapshot) else Snapshot.from_restic(e) for e in entries]
    return sorted(snapshots, key=lambda s: (s.time, s.id))
