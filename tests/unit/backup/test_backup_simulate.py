"""`python -m backup.simulate` as a user runs it, checked against the oracle."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from backup_oracle import expected_tiers

from backup.policy import DEFAULT_POLICY

REPO = Path(__file__).resolve().parents[3]


def run_simulator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backup.simulate", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def oracle(start: date, days: int, skip: set[date]) -> dict[str, list[str]]:
    today = start + timedelta(days=days - 1)
    taken = {start + timedelta(days=i) for i in range(days)} - skip
    expected = expected_tiers(taken, today, DEFAULT_POLICY)
    return {tier: sorted(d.isoformat() for d in dates) for tier, dates in expected.items()}


@pytest.mark.parametrize(
    "start, days, skip, at",
    [
        # The brief's example: Sunday 2025-03-02 and Sunday 2025-06-01 (a month's first) fail.
        ("2025-01-01", 400, "2025-03-02,2025-06-01", "03:15"),
        # Over both 2025 DST changes, backing up at 00:30 (yesterday in UTC), with a gap
        # across the end of October.
        ("2025-03-01", 250, "2025-10-25,2025-10-26,2025-10-27,2025-10-28,2025-11-01", "00:30"),
        # Leap year 2028, a time DST skips in March, and 20 failed days at the very end.
        ("2027-06-01", 300, ",".join(f"2028-03-{d:02d}" for d in range(7, 27)), "02:30"),
    ],
)
def test_simulate_cli_json_history_matches_oracle(
    start: str, days: int, skip: str, at: str
) -> None:
    result = run_simulator(
        "--start", start, "--days", str(days), "--skip", skip, "--time", at, "--json"
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)  # nothing but the JSON object on stdout
    assert list(printed) == ["local", "a", "b"]
    skipped = {date.fromisoformat(d) for d in skip.split(",")}
    assert printed == oracle(date.fromisoformat(start), days, skipped)


def test_simulate_cli_without_json_prints_one_line_per_tier() -> None:
    result = run_simulator("--start", "2025-01-01", "--days", "10")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(" ")[0] for line in lines] == ["local", "a", "b"]
    assert lines[0].startswith("local (7): 2025-01-04")


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--start", "2025-13-01", "--days", "3"], "--start"),
        (["--start", "yesterday", "--days", "3"], "--start"),
        (["--days", "3"], "--start"),
        (["--start", "2025-01-01", "--days", "0"], "--days"),
        (["--start", "2025-01-01", "--days", "many"], "--days"),
        (["--start", "2025-01-01"], "--days"),
        (["--start", "2025-01-01", "--days", "3", "--skip", "2025-02-30"], "--skip"),
        (["--start", "2025-01-01", "--days", "3", "--skip", "2025-01-04"], "--skip"),
        (["--start", "2025-01-01", "--days", "3", "--time", "25:00"], "--time"),
        (["--start", "2025-01-01", "--days", "3", "--time", "3:15"], "--time"),
        (["--start", "2025-01-01", "--days", "3", "--frobnicate"], "--frobnicate"),
    ],
)
def test_simulate_cli_bad_argument_exits_2_naming_the_flag(args: list[str], flag: str) -> None:
    result = run_simulator(*args, "--json")
    assert result.returncode == 2
    assert flag in result.stderr
    assert result.stdout == ""
