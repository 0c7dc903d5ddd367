"""Which snapshots to `restic copy` from the web host's repository to tier A or B.

A snapshot already on the destination is recognised by restic's `original` field: a
copy carries the id of the snapshot it was copied from (or that one's own `original`),
so source and copies share Snapshot.copy_key. Repositories filled by other means
(an older copy without `original`, a restore) are matched by the same instant and the
same tags instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from backup.policy import DEFAULT_POLICY, Policy
from backup.rotation import TIER_A, TIER_B, select
from backup.snapshots import Snapshot, read_snapshots
from backup.tags import MONTHLY, WEEKLY


def snapshots_to_copy(
    destination_tier: str,
    source: Iterable[Mapping[str, Any] | Snapshot],
    destination: Iterable[Mapping[str, Any] | Snapshot],
    now: datetime,
    policy: Policy = DEFAULT_POLICY,
) -> list[str]:
    """Ids of source snapshots to copy to "a" (all) or "b" (weekly/monthly), oldest first.

    Leaves out what the destination already holds, and what its rotation at `now` would
    forget at once (copying it would only add work for the storage server, and must
    never bring back a snapshot past its age, R-GDPR-3).
    """
    if destination_tier not in (TIER_A, TIER_B):
        raise ValueError(f"copies go to tier 'a' or 'b', not {destination_tier!r}")
    present = read_snapshots(destination)
    keys = {s.copy_key for s in present}
    instants = {(s.time, s.tags) for s in present}
    candidates = [
        s
        for s in read_snapshots(source)
        if s.copy_key not in keys
        and (s.time, s.tags) not in instants
        and (destination_tier == TIER_A or s.tags & {WEEKLY, MONTHLY})  # R-BKP-3, R-BKP-5
    ]
    kept = set(select(destination_tier, [*present, *candidates], now, policy).keep_ids)
    return [s.id for s in candidates if s.id in kept]
