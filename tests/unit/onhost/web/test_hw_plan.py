from __future__ import annotations

from datetime import UTC, datetime

import hw_plan
import pytest
from hypothesis import given
from hypothesis import strategies as st

A, B, C, D = (f"20260101T00000{i}Z-{'a' * 11}{i}" for i in range(4))


def test_release_id_sorts_by_time_and_names_content():
    rid = hw_plan.release_id("0123456789abcdef" * 4, datetime(2026, 1, 31, 12, 0, 5, tzinfo=UTC))
    assert rid == "20260131T120005Z-0123456789ab"
    assert hw_plan.RELEASE_ID.match(rid)


def test_plan_deploy_same_content_live_does_nothing():
    assert hw_plan.plan_deploy(A, {A: "s1", B: "s2"}, "s1", C) == ("none", A)


def test_plan_deploy_kept_content_switches_back():
    assert hw_plan.plan_deploy(B, {A: "s1", B: "s2"}, "s1", C) == ("switch", A)


def test_plan_deploy_new_content_stages_new_release():
    assert hw_plan.plan_deploy(A, {A: "s1"}, "s9", C) == ("stage", C)


def test_plan_deploy_first_release_stages():
    assert hw_plan.plan_deploy(None, {}, "s1", A) == ("stage", A)


def test_plan_deploy_id_clash_with_other_content_raises():
    with pytest.raises(ValueError, match="exists with other content"):
        hw_plan.plan_deploy(A, {A: "s1", C: "s3"}, "s9", C)


def test_rollback_target_previous_live_release():
    assert hw_plan.rollback_target(B, [A, B], {A, B}) == A


def test_rollback_target_twice_toggles_back():
    assert hw_plan.rollback_target(A, [A, B, A], {A, B}) == B


def test_rollback_target_skips_deleted_releases():
    assert hw_plan.rollback_target(C, [A, B, C], {A, C}) == A


def test_rollback_target_none_when_only_one():
    assert hw_plan.rollback_target(A, [A], {A}) is None


def test_to_prune_keeps_three_most_recent():
    assert hw_plan.to_prune(D, [A, B, C, D], {A, B, C, D}) == [A]


def test_to_prune_failed_leftovers_go_first():
    assert hw_plan.to_prune(B, [A, B], {A, B, C}) == [C]


ids = st.sampled_from([A, B, C, D])


@given(st.lists(ids, min_size=1, max_size=12), st.integers(1, 4))
def test_to_prune_never_current_nor_rollback_target(history, keep):
    existing = set(history)
    current = history[-1]
    doomed = hw_plan.to_prune(current, history, existing, keep)
    assert current not in doomed
    target = hw_plan.rollback_target(current, history, existing)
    assert target is None or target not in doomed
    assert len(existing) - len(doomed) >= min(len(existing), keep)
