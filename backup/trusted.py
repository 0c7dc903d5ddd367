"""The storage side's view of a repository a compromised web host may have written to (issue 19).

The rotation (backup.rotate) must never trust, never crash and never stall (R-BKP-6, R-GDPR-3):
  * it rotates only the site's GENUINE series: the runner's own snapshots (backup.take.series)
    that the ledger does not hold suspect (backup.suspect). A forged snapshot, dated in the
    future or at year 0, never counts as the tier's newest and never parses a date it cannot;
  * a genuine snapshot's age counts from the EARLIER of its declared time and its arrival: it
    is gone max_age_days after it arrived at the latest;
  * everything else (suspect, foreign, unreadable) is kept as evidence, and forgotten once it
    ARRIVED more than max_age_days ago: nothing a client writes stays for ever;
  * a lock file restic cannot read (junk written through the append-only server, which accepts
    new lock files) is removed here, where the repository is trusted; a real lock, even of a
    backup running right now, is left to `restic unlock`, which removes stale ones only.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from backup.ledger import SNAPSHOT_NAME, Ledger
from backup.policy import Policy
from backup.restic import Repo, Restic, ResticError
from backup.take import series


@dataclass(frozen=True)
class View:
    genuine: tuple[dict[str, Any], ...]  # listing entries, "time" = min(declared, arrival)
    others_expired: tuple[str, ...]  # ids: not genuine, arrived > max_age_days ago
    others_kept: tuple[str, ...]  # ids: not genuine, kept as evidence for now
    suspect: tuple[str, ...]  # ids the ledger holds suspect (a subset of the two above)


def rotation_view(listing: Sequence[Mapping[str, Any]], ledger: Ledger, host: str,
                  policy: Policy, now: datetime) -> View:
    own_ids = {str(s.get("id")) for s in series(list(listing), host)}
    genuine: list[dict[str, Any]] = []
    expired: list[str] = []
    kept: list[str] = []
    suspect: list[str] = []
    today = policy.local_date(now)
    claims = {str(s.get("id")): s for s in listing}
    for entry in ledger.present():
        claim = claims.get(entry.id)
        if entry.is_suspect:
            suspect.append(entry.id)
        if claim is not None and entry.id in own_ids and not entry.is_suspect:
            assert entry.declared_time is not None  # an unreadable time is suspect
            taken = min(entry.declared_time, entry.arrival)
            genuine.append({**claim, "time": taken.isoformat()})
            continue
        age = policy.age_days(policy.local_date(entry.arrival), today)
        (expired if age > policy.max_age_days else kept).append(entry.id)
    return View(tuple(genuine), tuple(expired), tuple(kept), tuple(suspect))


def lock_names(repo: Repo) -> list[str]:
    try:
        return sorted(os.listdir(Path(repo.location) / "locks"))
    except FileNotFoundError:
        return []


def junk_locks(repo: Repo, restic: Restic, timeout: float = 120) -> list[str]:
    """Names in <repo>/locks/ that restic cannot read as a lock (never a real one)."""
    junk = []
    for name in lock_names(repo):
        if not SNAPSHOT_NAME.fullmatch(name):
            if _write_in_progress(repo, name):
                continue
            junk.append(name)
            continue
        try:
            restic.run([*restic.cat_argv(repo, "lock", name)], f"read lock {name[:8]}", timeout)
        except ResticError as error:
            if error.returncode in (124, 127):
                raise  # restic itself is missing or hung: that is no junk lock
            if not (Path(repo.location) / "locks" / name).exists():
                continue  # a lock released meanwhile
            junk.append(name)
    return junk


# restic's local backend writes a file as <name>-tmp-<random>, rclone's (the storage servers'
# append-only server) as <name>.<random>.partial, and each renames it when complete: a lock
# being written by a backup running right now. Left older than this, it is junk.
TMP_NAME = re.compile(r"[0-9a-f]{64}(-tmp-[0-9]+|\.[0-9a-zA-Z]+\.partial)")
TMP_GRACE_SECONDS = 600


def _write_in_progress(repo: Repo, name: str) -> bool:
    if not TMP_NAME.fullmatch(name):
        return False
    try:
        age = time.time() - (Path(repo.location) / "locks" / name).stat().st_mtime
    except FileNotFoundError:
        return True  # renamed or gone meanwhile: not ours to remove
    return age < TMP_GRACE_SECONDS


def locks_of(repo: Repo, restic: Restic, host: str, timeout: float = 120) -> list[str]:
    """Lock files a process on `host` holds (restic records its host name in each lock): after
    `fab backup.contain` revoked that host's identity and ended its sessions, none is alive."""
    held = []
    for name in lock_names(repo):
        try:
            proc = restic.run(restic.cat_argv(repo, "lock", name), f"read lock {name[:8]}",
                              timeout)
            if json.loads(proc.stdout or "{}").get("hostname") == host:
                held.append(name)
        except (ResticError, ValueError):
            continue  # junk or gone: junk_locks' business
    return held


def remove_locks(repo: Repo, names: Sequence[str]) -> list[str]:
    """Remove junk lock files; returns the ones removed."""
    removed = []
    for name in names:
        try:
            (Path(repo.location) / "locks" / name).unlink()
            removed.append(name)
        except FileNotFoundError:
            pass
    return removed


def summarise(view: View, ledger: Ledger) -> dict[str, Any]:
    """What the status record says about the repository's strangers."""
    out: dict[str, Any] = {"suspect": len(view.suspect), "others_kept": len(view.others_kept),
                           "others_expired": len(view.others_expired)}
    if ledger.bad_lines:
        out["ledger_bad_lines"] = ledger.bad_lines
    return out


def reasons_of(ledger: Ledger, ids: Sequence[str]) -> Mapping[str, tuple[str, ...]]:
    return {i: ledger.entries[i].suspect for i in ids if i in ledger.entries}
