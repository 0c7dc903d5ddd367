"""snapshots_to_copy: what goes from the web host to backup-a and backup-b."""

from __future__ import annotations

import pytest
from backup_helpers import paris, snap

from backup.copies import snapshots_to_copy
from backup.tags import MONTHLY, WEEKLY

NOW = paris("2025-06-03 03:15")


def local_repo() -> list[dict]:
    return [
        snap("2025-05-31 03:15"),
        snap("2025-06-01 03:15", WEEKLY, MONTHLY),
        snap("2025-06-02 03:15"),
        snap("2025-06-03 03:15"),
    ]


def test_snapshots_to_copy_b_takes_weekly_and_monthly_only() -> None:
    local = local_repo()
    assert snapshots_to_copy("b", local, [], NOW) == [local[1]["id"]]


def test_snapshots_to_copy_a_takes_every_missing_snapshot() -> None:
    local = local_repo()
    on_a = [{**local[0], "id": "copy0", "original": local[0]["id"]}]
    assert snapshots_to_copy("a", local, on_a, NOW) == [s["id"] for s in local[1:]]


def test_snapshots_to_copy_b_copy_matched_by_original_is_skipped() -> None:
    local = local_repo()
    on_b = [{**local[1], "id": "c" * 64, "original": local[1]["id"]}]
    assert snapshots_to_copy("b", local, on_b, NOW) == []


def test_snapshots_to_copy_b_copy_matched_by_time_and_tags_is_skipped() -> None:
    local = local_repo()
    on_b = [{**local[1], "id": "d" * 64}]  # no `original`: copied by other means
    assert snapshots_to_copy("b", local, on_b, NOW) == []


def test_snapshots_to_copy_b_same_time_other_tags_is_copied() -> None:
    local = local_repo()
    on_b = [{**local[1], "id": "d" * 64, "tags": [WEEKLY]}]
    assert snapshots_to_copy("b", local, on_b, NOW) == [local[1]["id"]]


def test_snapshots_to_copy_b_from_a_copy_of_copy_is_matched_by_shared_original() -> None:
    local = local_repo()
    on_a = [{**s, "id": f"a{i}", "original": s["id"]} for i, s in enumerate(local)]
    on_b = [{**local[1], "id": "b1", "original": local[1]["id"]}]
    assert snapshots_to_copy("b", on_a, on_b, NOW) == []


def test_snapshots_to_copy_b_weekly_b_would_forget_at_once_is_not_copied() -> None:
    old_weekly = snap("2025-04-27 03:15", WEEKLY)  # age 37 on 06-03
    local = [old_weekly, *local_repo()]
    assert snapshots_to_copy("b", local, [], NOW) == [local[2]["id"]]


def test_snapshots_to_copy_b_snapshot_past_365_days_is_never_copied() -> None:
    ancient = snap("2024-06-01 03:15", WEEKLY, MONTHLY)
    assert snapshots_to_copy("b", [ancient], [], paris("2025-06-03 03:15")) == []


def test_snapshots_to_copy_local_destination_raises() -> None:
    with pytest.raises(ValueError, match="'local'"):
        snapshots_to_copy("local", [], [], NOW)
