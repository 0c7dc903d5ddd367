from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.facts import SystemFacts, parse_facts
from engine.inventory import Inventory
from engine.resources import File
from engine.role import HostContext
from onhost import agent
from roles.web.layout import SiteLayout
from roles.web.limits import (
    MAX_CHILDREN,
    MIN_CHILDREN,
    php_budget_mb,
    pool_size,
    timer_schedule,
)
from roles.web.role import web
from roles.web.site import Limits

PHP_256 = Limits(256, 64, 60)  # the prod sites' memory_limit_mb


# The PHP-FPM pool is sized from the host's memory (MemTotal, a fact read on the host), not a
# fixed budget: reserve 2 GB for the OS and MariaDB, give PHP 3/4 of the rest, divide by the
# site's memory_limit, clamp to 4..64.
@pytest.mark.parametrize("memory_mb,children", [
    (7949, 17),   # an 8 GB VM (b3-8): 7936 -> (7936 - 2048) * 3/4 = 4416 MB -> 17 workers
    (15998, 40),  # a 16 GB VM (b3-16, the prod web flavor): 10 368 MB -> 40 workers
    (3900, 5),    # a 4 GB VM: 1344 MB -> 5 workers
])
def test_pool_size_host_memory_sets_max_children(memory_mb, children):
    assert pool_size(PHP_256, memory_mb).max_children == children


def test_pool_size_small_host_hits_the_floor():
    assert php_budget_mb(1950) == 0  # 2 GB: nothing left after the OS and MariaDB
    assert pool_size(PHP_256, 1950).max_children == MIN_CHILDREN == 4


def test_pool_size_unknown_memory_gets_the_floor():
    assert pool_size(PHP_256, 0).max_children == MIN_CHILDREN


def test_pool_size_big_host_hits_the_ceiling():
    assert pool_size(PHP_256, 64 * 1024).max_children == MAX_CHILDREN == 64
    assert pool_size(Limits(64, 8, 30), 24105).max_children == MAX_CHILDREN


def test_pool_size_bigger_memory_limit_fewer_workers():
    assert pool_size(Limits(1024, 64, 60), 15998).max_children == 10


def test_pool_size_two_sites_on_a_host_share_its_memory():
    assert pool_size(PHP_256, 15998, sites_on_host=2).max_children == 20


def test_pool_size_memtotal_moving_a_few_mb_keeps_the_pool():
    # A kernel update moves MemTotal by a few MB: 256 MB steps keep the value (and the
    # second deploy's "nothing to change") on a given host.
    assert {pool_size(PHP_256, m) for m in range(7937, 8192, 7)} == {pool_size(PHP_256, 7936)}


@given(st.integers(1, 8192), st.integers(0, 1 << 20), st.integers(1, 4))
def test_pool_size_any_host_within_floor_ceiling_and_spares_ordered(memory, host_mb, sites):
    size = pool_size(Limits(memory, 8, 30), host_mb, sites)
    assert MIN_CHILDREN <= size.max_children <= MAX_CHILDREN
    assert 1 <= size.min_spare <= size.start_servers <= size.max_spare <= size.max_children


@given(st.integers(0, 1 << 20), st.integers(1, 1 << 20))
def test_php_budget_mb_never_more_than_the_host_minus_reserves(host_mb, more):
    assert 0 <= php_budget_mb(host_mb) <= max(0, host_mb - 2048)
    assert php_budget_mb(host_mb) <= php_budget_mb(host_mb + more)


def test_parse_facts_mem_total_kb_becomes_memory_mb():
    facts = parse_facts({"system": {"mem_total_kb": 16381900}})
    assert facts.system.memory_mb == 15997
    assert parse_facts({"system": {}}).system.memory_mb == 0


def _pool_of(inv: Inventory, memory_mb: int) -> str:
    ctx = HostContext(inv, inv.host("web-villeparisis"), SystemFacts(memory_mb=memory_mb))
    path = SiteLayout("villeparisis").fpm_pool
    pool = next(r for r in web(ctx).resources if isinstance(r, File) and r.path == path)
    return pool.data.decode()


def test_web_role_pool_rendered_from_the_hosts_memory_fact(prod):
    assert "pm.max_children = 40\n" in _pool_of(prod, 15998)
    assert "pm.max_children = 17\n" in _pool_of(prod, 7949)


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


def test_mem_total_kb_reads_the_memtotal_line(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16381900 kB\nMemFree:        15000000 kB\n")
    assert agent.mem_total_kb(str(meminfo)) == 16381900
    assert agent.mem_total_kb(str(tmp_path / "absent")) == 0
