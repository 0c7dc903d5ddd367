"""Which snapshots each tier keeps, from the snapshot list and an explicit `now`.

Pure: never reads the clock. The runner then runs `restic forget ID...` with
Selection.forget_ids (only when not empty) and `restic prune`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from backup.policy import DEFAULT_POLICY, Policy
from backup.snapshots import Snapshot, read_snapshots
from backup.tags import MONTHLY, SAFETY, WEEKLY, safety_expires

LOCAL, TIER_A, TIER_B = "local", "a", "b"
TIERS = (LOCAL, TIER_A, TIER_B)


@dataclass(frozen=True)
class Decision:
    id: str
    date: str  # local date, ISO
    reason: str

    def __str__(self) -> str:
        return f"{self.id[:8]} {self.date}: {self.reason}"


@dataclass(frozen=True)
class Selection:
    tier: str
    keep: tuple[Decision, ...]
    forget: tuple[Decision, ...]

    @property
    def keep_ids(self) -> list[str]:
        return [d.id for d in self.keep]

    @property
    def forget_ids(self) -> list[str]:
        return [d.id for d in self.forget]


def select(
    tier: str,
    snapshots: Iterable[Mapping[str, Any] | Snapshot],
    now: datetime,
    policy: Policy = DEFAULT_POLICY,
) -> Selection:
    """Split a tier's snapshots into keep and forget, oldest first, each with a reason.

    tier: "local" (web host), "a" (backup-a) or "b" (backup-b).
    snapshots: `restic snapshots --json` entries of that tier's repository.
    now: aware datetime; ages are counted in local calendar days from its date.
    """
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}: expected one of {', '.join(TIERS)}")
    today = policy.local_date(now)
    dated = [(policy.local_date(s.time), s) for s in read_snapshots(snapshots)]
    # A run of failed backups must never empty a tier: the newest backup stays. All
    # snapshots of the newest local date count as that backup (files + database dump).
    # A restore's safety snapshot is no backup: it never stands for the newest one.
    newest_date = max((taken for taken, s in dated if SAFETY not in s.tags), default=None)
    keep: list[Decision] = []
    forget: list[Decision] = []
    for taken, snapshot in dated:
        age = policy.age_days(taken, today)
        safety = SAFETY in snapshot.tags
        if safety:
            kept, reason = _judge_safety(tier, snapshot, taken, today)
        else:
            kept, reason = _judge(tier, snapshot, age, policy)
        if age > policy.max_age_days:
            # Checked last so it overrides everything, the newest included.
            kept, reason = False, f"age {age} > {policy.max_age_days} days (R-BKP-6, R-GDPR-3)"
        elif not kept and not safety and taken == newest_date:
            kept, reason = True, f"newest backup of the tier, age {age} ({reason}; kept anyway)"
        (keep if kept else forget).append(Decision(snapshot.id, taken.isoformat(), reason))
    return Selection(tier, tuple(keep), tuple(forget))


def _judge(tier: str, snapshot: Snapshot, age: int, policy: Policy) -> tuple[bool, str]:
    """The tier's own rule, before the newest-kept and max-age rules."""
    if tier == LOCAL:
        return _within(age, policy.local_keep_days, "daily on the web host (R-BKP-1)")
    if tier == TIER_A:
        return _within(age, policy.a_keep_days, "daily on backup-a (R-BKP-2)")
    if MONTHLY in snapshot.tags and age <= policy.monthly_keep_days:
        return True, f"monthly, age {age} <= {policy.monthly_keep_days} days (R-BKP-5)"
    if WEEKLY in snapshot.tags and age <= policy.weekly_keep_days:
        return True, f"weekly, age {age} <= {policy.weekly_keep_days} days (R-BKP-3, R-BKP-4)"
    if MONTHLY in snapshot.tags:
        return False, f"monthly, age {age} > {policy.monthly_keep_days} days (R-BKP-5)"
    if WEEKLY in snapshot.tags:
        return False, f"weekly, age {age} > {policy.weekly_keep_days} days (R-BKP-4)"
    return False, "neither weekly nor monthly: does not belong on backup-b (R-BKP-3)"


def _judge_safety(tier: str, snapshot: Snapshot, taken: date, today: date) -> tuple[bool, str]:
    """A restore's safety snapshot: on the web host until its expiry date, nowhere else."""
    if tier != LOCAL:
        return False, "safety snapshot of a restore: kept on the web host only"
    expires = safety_expires(snapshot.tags, taken)
    if today < expires:
        return True, f"safety snapshot of a restore, expires on {expires.isoformat()}"
    return False, f"safety snapshot of a restore, expired on {expires.isoformat()}"


def _within(age: int, keep_days: int, what: str) -> tuple[bool, str]:
    if age < keep_days:
        return True, f"{what}, age {age} < {keep_days} days"
    return False, f"{what}, age {age} >= {keep_days} days"
