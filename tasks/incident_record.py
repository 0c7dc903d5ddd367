"""Append a record to the incident log on ops from the admin's tasks (R-INC-4, issue 13).

    record_incident(inv, access, record, emit) -> bool

A restore (tasks/backup_restore.py) and a failed release (tasks/web_release.py) leave one
JSON line in ops's incident record, beside the alert notifications. The admin's own SSH
access runs the receiver's `append` on ops (roles/monitoring/incidents.py: the same code that
writes the alerts, its allow-list included), with the record on stdin: never on a command
line. A web host never writes to ops, so a compromised one can neither write nor rewrite the
record.

The record is never worth failing the work it records: without an ops host in the inventory,
with ops unreachable or the append failing, the task says so (and prints the record) and
goes on. `read_incidents` is what `fab incidents` prints (tasks/incidents_tasks.py).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from engine.channel import run_on
from roles.monitoring.incidents import LOG, append_argv, show_argv

TIMEOUT = 60


class IncidentError(RuntimeError):
    pass


def ops_host(inv: Any) -> Any | None:
    hosts = [h for h in inv.hosts if h.role == "ops"]
    return hosts[0] if hosts else None


def record_incident(inv: Any, access: Any, record: dict[str, Any],
                    emit: Callable[[str], None] = print, log: str = LOG,
                    what: str = "incident record") -> bool:
    """Append `record` on ops (to `log`: the incident record, or the update log); True when
    it is in the log. Never raises."""
    line = json.dumps(record, sort_keys=True)
    ops = ops_host(inv)
    if ops is None:
        emit(f"{what}: no ops host in the inventory, not recorded: {line}")
        return False
    try:
        code, _out, err = run_on(access.connection(ops), append_argv(log), line.encode(),
                                  sudo=True, timeout=TIMEOUT)
    except Exception as exc:  # noqa: BLE001 -- unreachable, refused, timed out: all reported
        emit(f"{what}: {ops.name} unreachable ({exc}), not recorded: {line}")
        return False
    if code != 0:
        emit(f"{what}: append on {ops.name} failed (exit {code}: "
             f"{err.decode(errors='replace').strip()[-300:]}), not recorded: {line}")
        return False
    emit(f"{what}: appended on {ops.name}")
    return True


def read_incidents(inv: Any, access: Any, log: str = LOG) -> list[dict[str, Any]]:
    """Every record of ops's incident log, oldest first (rotated files included)."""
    ops = ops_host(inv)
    if ops is None:
        raise IncidentError("no ops host in the inventory: there is no incident record")
    code, out, err = run_on(access.connection(ops), show_argv(log), sudo=True, timeout=TIMEOUT)
    if code != 0:
        raise IncidentError(f"reading the incident record on {ops.name} failed (exit {code}): "
                            f"{err.decode(errors='replace').strip()[-300:]}")
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def restore_record(result: dict[str, Any] | None, site: str, source: str, at: str,
                   started: str, error: str = "") -> dict[str, Any]:
    """The incident line of a `fab restore` (done or failed), from its result."""
    r = result or {}
    host_restore = r.get("restore") or {}
    ok = bool(r.get("ok")) and not error
    errors = list(r.get("errors") or []) + ([error] if error else [])
    safety = r.get("safety") or {}
    return {
        "kind": "restore", "status": "resolved" if ok else "failed",
        "what": f"restore of {site} from {source} ({at or 'newest'})",
        "site": site, "host": r.get("target"), "tier": source,
        "result": "ok" if ok else "failed", "started": started, "resolved": now() if ok else None,
        "seconds": r.get("rto_seconds"), "snapshot": host_restore.get("snapshot_time"),
        "outcome": host_restore.get("outcome"), "errors": errors[:10],
        "go_back": safety.get("go_back"), "source": "fab restore",
    }


def release_record(site: str, host: str, action: str, error: str,
                   record: dict[str, Any] | None) -> dict[str, Any]:
    """The incident line of a failed `fab web.release` / `fab web.rollback`."""
    r = record or {}
    return {
        "kind": "release", "status": "failed",
        "what": f"{action} of {site} failed ({r.get('result') or 'see errors'})",
        "site": site, "host": host, "result": "failed", "started": r.get("time"),
        "release": r.get("release"), "previous": r.get("previous"),
        "outcome": "maintenance" if r.get("maintenance") else r.get("result"),
        "errors": [error[-500:]], "source": f"fab web.{action}",
    }


class ByName:
    """An `access` for record_incident from a task's `connect(host name)` (tasks/web_tasks)."""

    def __init__(self, connect: Callable[[str], Any]) -> None:
        self.connect = connect

    def connection(self, host: Any) -> Any:
        return self.connect(host.name)
