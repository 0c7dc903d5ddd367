"""The mocks harness itself: failures inside `.apply()` surface; builds do not leak."""
from __future__ import annotations

import pulumi
import pytest

from infra.mockrun import build_under_mocks

from .conftest import stack_of


def _failing(_stack) -> None:
    pulumi.export("broken", pulumi.Output.from_input(1).apply(lambda _: 1 / 0))


def test_build_under_mocks_error_inside_apply_propagates():
    with pytest.raises(ZeroDivisionError):
        build_under_mocks(stack_of("prod"), build=_failing)


def test_build_under_mocks_after_a_failure_starts_clean(builds):
    with pytest.raises(ZeroDivisionError):
        build_under_mocks(stack_of("prod"), build=_failing)
    again = build_under_mocks(stack_of("prod"))
    assert sorted((r.type, r.name) for r in again.resources) == sorted(
        (r.type, r.name) for r in builds["prod"][1].resources)
    assert set(again.outputs) == {"inventory", "host_public_keys", "dns_records"}
