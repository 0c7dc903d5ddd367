"""Which snapshots on a storage server are suspect: their claims disagree with what the server saw.

A web host writes its snapshots to A and B through its own backup identity, append-only. A
compromised host keeps that identity, so it can still ADD snapshots claiming any time, host,
tags and paths (issue 19). The storage server cannot check the content (it is the site's data),
but it knows when each snapshot arrived (backup.ledger) and what the runner writes. A snapshot is
suspect when (R-INC-1, R-GDPR-9):
  * its declared time cannot be read (restic accepts year 0; Python does not);
  * it claims to be from the future: declared later than its arrival beyond SKEW (clocks drift
    by seconds; a runner stamps its snapshots when its run starts, before they arrive);
  * it claims to be old: declared earlier than its arrival by more than the backup WINDOW (a
    night's snapshots reach A and B during the same run: minutes, hours for a very large site;
    a copy that waited for an unreachable storage server through a whole day is suspect too, and
    an admin who knows why passes `--allow-suspect ID` to a restore);
  * its host, tags or paths are not what the runner writes for this site;
  * an admin marked it (`fab backup.contain --since`): it arrived after a suspected compromise.
Pure: the ledger gives the facts, the storage configuration the expectations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from backup.records import RECORD_PREFIXES
from backup.tags import MONTHLY, WEEKLY

KIND_DB, KIND_FILES = "db", "files"  # backup.run's kind tags (run.py imports this module's peers)
WINDOW = timedelta(hours=26)
SKEW = timedelta(minutes=10)
RUNNER_TAGS = frozenset({KIND_DB, KIND_FILES, WEEKLY, MONTHLY})


@dataclass(frozen=True)
class Expectation:
    """What the runner writes for one site: its host name (`restic --host`) and, per kind, the
    exact paths of its snapshots (the files snapshot's directories, the dump's stdin name)."""

    host: str
    paths: Mapping[str, frozenset[str]] = field(default_factory=dict)
    window: timedelta = WINDOW
    skew: timedelta = SKEW

    @classmethod
    def from_config(cls, data: Mapping[str, object], host: str) -> Expectation:
        """From the storage configuration's optional `expect` object (roles/backup/config.py):
        {"paths": {"db": [...], "files": [...]}, "window_hours": 26, "skew_minutes": 10}."""
        expect = data.get("expect") or {}
        if not isinstance(expect, Mapping):
            raise ValueError("expect: not an object")
        paths = expect.get("paths") or {}
        if not isinstance(paths, Mapping):
            raise ValueError("expect.paths: not an object")
        return cls(host=host,
                   paths={str(k): frozenset(map(str, v)) for k, v in paths.items()},
                   window=timedelta(hours=float(expect.get("window_hours", 26))),
                   skew=timedelta(minutes=float(expect.get("skew_minutes", 10))))


def reasons(declared: datetime | None, declared_text: str, arrival: datetime, host: str,
            tags: Sequence[str], paths: Sequence[str], expect: Expectation) -> tuple[str, ...]:
    """Why a snapshot is suspect; empty when it is what the runner writes, when it says."""
    out: list[str] = []
    if declared is None:
        out.append(f"declared time {declared_text!r} cannot be read")
    elif declared > arrival + expect.skew:
        out.append(f"dated in the future: declared {declared.isoformat()}, arrived "
                   f"{arrival.isoformat()}")
    elif declared < arrival - expect.window:
        hours = expect.window.total_seconds() / 3600
        out.append(f"backdated: declared {declared.isoformat()}, arrived {arrival.isoformat()} "
                   f"(more than {hours:g} h later)")
    if host != expect.host:
        out.append(f"host {host!r} is not the site's host {expect.host!r}")
    kinds = [t for t in tags if t in (KIND_DB, KIND_FILES)]
    strange = [t for t in tags if t not in RUNNER_TAGS and not t.startswith(RECORD_PREFIXES)]
    if len(kinds) != 1:
        out.append(f"tags {sorted(tags)} do not name one kind (db or files)")
    if strange:
        out.append(f"tags the runner never writes: {', '.join(sorted(strange))}")
    if len(kinds) == 1 and kinds[0] in expect.paths and frozenset(paths) != expect.paths[kinds[0]]:
        out.append(f"paths {sorted(paths)} are not the {kinds[0]} snapshot's "
                   f"{sorted(expect.paths[kinds[0]])}")
    return tuple(out)
