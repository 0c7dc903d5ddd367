"""The run lock (two runs never overlap) and the status / run-record files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backup.lock import LockHeld, exclusive
from backup.status import (
    RunRecord,
    append_run,
    read_runs,
    read_status,
    tier_summary,
    update_status,
)

HOLD = """
import sys, time
from backup.lock import exclusive
with exclusive(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(lock: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[3])
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    proc = _holder(lock)
    try:
        with pytest.raises(LockHeld, match=f"pid {proc.pid}"), exclusive(lock):
            pass
    finally:
        proc.kill()
        proc.wait()


def test_the_lock_dies_with_its_holder(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    proc = _holder(lock)
    os.kill(proc.pid, signal.SIGKILL)  # a crashed run: no cleanup code runs
    proc.wait()
    with exclusive(lock):
        pass


def test_within_one_process_a_second_open_is_refused_too(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    with exclusive(lock), pytest.raises(LockHeld), exclusive(lock):
        pass
    with exclusive(lock):  # released on exit
        pass


def _record(ok: bool) -> dict:
    record = RunRecord("demo", "backup")
    with record.step("database"):
        time.sleep(0.01)
    if not ok:
        record.fail("database dump failed")
    return record.as_dict()


def test_status_keeps_the_last_success_through_a_failure(tmp_path: Path) -> None:
    update_status(tmp_path, _record(True), {"local": {"snapshots": 2}})
    first = read_status(tmp_path)
    assert first["last_run"]["result"] == "ok"
    assert first["last_success"]["steps"]["database"] >= 0.01
    update_status(tmp_path, _record(False), {"a": {"snapshots": 4}})
    second = read_status(tmp_path)
    assert second["last_run"]["result"] == "failed"
    assert second["last_run"]["errors"] == ["database dump failed"]
    assert second["last_success"] == first["last_success"]
    assert second["tiers"] == {"local": {"snapshots": 2}, "a": {"snapshots": 4}}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp file left


def test_every_run_is_recorded_once_in_order(tmp_path: Path) -> None:
    for ok in (True, False, True):
        append_run(tmp_path, _record(ok))
    runs = read_runs(tmp_path)
    assert [r["result"] for r in runs] == ["ok", "failed", "ok"]
    assert all(json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines())


def test_a_failing_step_is_timed_and_named() -> None:
    record = RunRecord("demo", "backup")
    with pytest.raises(RuntimeError), record.step("copy to a"):
        raise RuntimeError("no route to host")
    assert record.steps["copy to a"]["ok"] is False
    assert record.steps["copy to a"]["error"] == "no route to host"


def test_tier_summary_compares_real_instants_not_strings() -> None:
    snaps = [
        {"id": "x", "time": "2025-01-05T03:15:00+01:00", "tags": ["weekly", "db"]},
        {"id": "y", "time": "2025-01-05T02:20:00Z", "tags": ["files"]},  # later (03:20 Paris)
    ]
    summary = tier_summary(snaps)
    assert summary["newest"]["id"] == "y"
    assert summary["oldest_time"] == "2025-01-05T03:15:00+01:00"
    assert summary["by_tag"] == {"weekly": 1, "db": 1, "files": 1}
    assert tier_summary([])["newest"] is None


def test_tier_summary_safety_snapshots_counted_apart_never_newest() -> None:
    snaps = [
        {"id": "x", "time": "2025-01-05T03:15:00+01:00", "tags": ["db"]},
        {"id": "s", "time": "2025-01-06T10:00:00+01:00",
         "tags": ["safety", "safety-expires=2025-01-13", "db"]},
    ]
    summary = tier_summary(snaps)
    assert summary["newest"]["id"] == "x"  # a restore's safety snapshot is no night's backup
    assert summary["snapshots"] == 1 and summary["safety_snapshots"] == 1
    assert "safety" not in summary["by_tag"]
