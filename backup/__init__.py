"""Backup rotation for the two sites: pure decisions, no I/O (issue 6).

Runs on Debian 13 hosts under cron with the standard library only.
The backup runner lists snapshots with `restic snapshots --json`, asks these
functions what to tag, copy and forget, and then runs restic itself.

Public entry points:
    Policy                   the rotation's numbers (backup.policy)
    tags_for_new_snapshot    weekly/monthly tags, decided when a snapshot is taken (backup.tags)
    select                   which snapshots a tier keeps or forgets, with reasons (backup.rotation)
    snapshots_to_copy        which snapshots to `restic copy` to tier A or B (backup.copies)
"""

from backup.copies import snapshots_to_copy
from backup.policy import DEFAULT_POLICY, Policy
from backup.rotation import TIERS, Decision, Selection, select
from backup.snapshots import Snapshot, parse_restic_time
from backup.tags import MONTHLY, WEEKLY, tags_for_new_snapshot

__all__ = [
    "DEFAULT_POLICY",
    "MONTHLY",
    "TIERS",
    "WEEKLY",
    "Decision",
    "Policy",
    "Selection",
    "Snapshot",
    "parse_restic_time",
    "select",
    "snapshots_to_copy",
    "tags_for_new_snapshot",
]
