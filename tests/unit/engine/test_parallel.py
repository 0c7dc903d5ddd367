"""Hosts in parallel: results in inventory order, one line per host, a failure stops nothing."""
from __future__ import annotations

import threading
import time

from engine.converge import HostResult
from engine.parallel import run_all


def test_run_all_hosts_run_concurrently_and_come_back_in_order() -> None:
    barrier = threading.Barrier(3, timeout=5)

    def work(host: str) -> HostResult:
        barrier.wait()  # deadlocks (then times out) unless all three run at once
        return HostResult(host)
    lines: list[str] = []
    results = run_all(["c", "a", "b"], work, emit=lines.append)
    assert [r.host for r in results] == ["c", "a", "b"]
    assert len(lines) == 3


def test_run_all_a_crashing_host_is_reported_and_the_others_finish() -> None:
    def work(host: str) -> HostResult:
        if host == "bad":
            raise RuntimeError("bug")
        time.sleep(0.05)
        return HostResult(host)
    lines: list[str] = []
    results = run_all(["ok1", "bad", "ok2"], work, emit=lines.append)
    assert [r.ok for r in results] == [True, False, True]
    assert "RuntimeError: bug" in results[1].error
    assert sum(line.startswith("FAIL") for line in lines) == 1
