"""The site's writers (its PHP-FPM and cron units, step 3 and 9 of backup/restore.py):
stopped and checked stopped before anything is touched, started and checked running after."""
from __future__ import annotations

import subprocess
from collections.abc import Sequence

from backup.restore_db import RestoreError


def _systemctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=300)


def stop_writers(units: Sequence[str]) -> list[str]:
    """Stop every unit and check it stopped; returns those that were active (to start again).
    Any unit that does not stop: the stopped ones are started again and RestoreError names
    every failure (nothing else touched)."""
    active = [u for u in units if _systemctl("is-active", "--quiet", u).returncode == 0]
    errors = _switch(units, "stop", active=False)
    if errors:
        errors += start_writers(active)
        raise RestoreError("the site's writers could not be stopped, nothing touched: "
                           + "; ".join(errors))
    return active


def start_writers(units: Sequence[str]) -> list[str]:
    """Start the units again and check they run; returns the errors (every one)."""
    return _switch(units, "start", active=True)


def _switch(units: Sequence[str], action: str, active: bool) -> list[str]:
    """`systemctl <action>` each unit, then check it is (or is no longer) active; every error."""
    errors = []
    for unit in units:
        proc = _systemctl(action, unit)
        if proc.returncode != 0:
            errors.append(f"systemctl {action} {unit} failed (exit {proc.returncode}): "
                          f"{proc.stderr.strip()[-300:]}")
        elif (_systemctl("is-active", "--quiet", unit).returncode == 0) != active:
            errors.append(f"{unit} is {'not' if active else 'still'} active after "
                          f"systemctl {action}")
    return errors
