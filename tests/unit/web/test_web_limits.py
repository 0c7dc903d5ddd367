from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roles.web.limits import pool_size, timer_schedule
from roles.web.site import Limits


def test_pool_size_256mb_budget_fits_twelve_workers():
    size = pool_size(Limits(256, 64, 60), budget_mb=3072)
    assert size.max_children == 12
    assert size.min_spare <= size.start_servers <= size.max_spare <= size.max_children


@given(st.integers(1, 8192), st.integers(256, 65536))
def test_pool_size_any_limits_spares_within_bounds(memory, budget):
    size = pool_size(Limits(memory, 8, 30), budget_mb=budget)
    assert 4 <= size.max_children <= 64
    assert 1 <= size.min_spare <= size.start_servers <= size.max_spare <= size.max_children


@pytest.mark.parametrize("minutes,lines", [
    (15, ("OnCalendar=*-*-* *:00/15:00",)),
    (1, ("OnCalendar=*-*-* *:00/1:00",)),
    (120, ("OnCalendar=*-*-* 00/2:00:00",)),
    (1440, ("OnCalendar=*-*-* 00/24:00:00",)),
    (7, ("OnBootSec=5min", "OnUnitActiveSec=7min")),
    (90, ("OnBootSec=5min", "OnUnitActiveSec=90min")),
])
def test_timer_schedule_divisors_of_an_hour_are_wall_clock(minutes, lines):
    assert timer_schedule(minutes) == lines


@pytest.mark.parametrize("minutes", [0, -5, 1441])
def test_timer_schedule_out_of_range_raises(minutes):
    with pytest.raises(ValueError, match="1..1440"):
        timer_schedule(minutes)
