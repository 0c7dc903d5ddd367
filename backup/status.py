"""What monitoring and `fab backup.status` read, and the record of every run (R-INC-4).

Per site, in its state directory:
  status.json   the latest picture: last run (result, error, durations per step), last
                success, sizes, snapshot counts and newest snapshot per tier, and per tier
                whether the last run reached it ("ok", "error", "failed": a tier that could
                not be reached keeps its last known picture). Replaced atomically, so a
                reader never sees half a file.
  runs.jsonl    one JSON line per run, appended, never rewritten: what ran, when, with which
                result and message (the incident record R-INC-4 asks for).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backup.records import is_record
from backup.snapshots import parse_restic_time
from backup.tags import SAFETY

STATUS_FILE = "status.json"
RUNS_FILE = "runs.jsonl"
SCHEMA = 1


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RunRecord:
    """One run, filled in step by step."""

    site: str
    kind: str  # "backup" (web host), "rotate" (storage server), "restore", "check"
    tier: str | None = None
    started: str = field(default_factory=utc_now)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    _t0: float = field(default_factory=time.monotonic, repr=False)

    @contextmanager
    def step(self, name: str) -> Iterator[dict[str, Any]]:
        """Time a step; an exception is recorded as the step's error and propagates."""
        t0 = time.monotonic()
        entry: dict[str, Any] = {"ok": False}
        self.steps[name] = entry
        try:
            yield entry
            entry["ok"] = True
        except BaseException as error:
            entry["error"] = str(error) or type(error).__name__
            raise
        finally:
            entry["seconds"] = round(time.monotonic() - t0, 3)

    def fail(self, message: str) -> None:
        self.errors.append(message)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "site": self.site,
            "kind": self.kind,
            "tier": self.tier,
            "started": self.started,
            "finished": utc_now(),
            "seconds": round(time.monotonic() - self._t0, 3),
            "result": "ok" if self.ok else "failed",
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "steps": self.steps,
            **self.facts,
        }


def write_atomic(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix="~", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # monitoring reads it; it holds no secret
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_run(state_dir: str | Path, record: Mapping[str, Any]) -> None:
    path = Path(state_dir) / RUNS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one write with O_APPEND: lines never interleave
    finally:
        os.close(fd)


def read_status(state_dir: str | Path) -> dict[str, Any]:
    path = Path(state_dir) / STATUS_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def read_runs(state_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(state_dir) / RUNS_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def update_status(state_dir: str | Path, record: Mapping[str, Any],
                  tiers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Merge this run into status.json: last run always, last success only when it succeeded,
    and the per-tier pictures this run saw (other tiers keep what earlier runs saw)."""
    previous = read_status(state_dir)
    status: dict[str, Any] = {
        "schema": SCHEMA,
        "site": record["site"],
        "kind": record["kind"],
        "last_run": record,
        "last_success": previous.get("last_success"),
        "tiers": _merge_tiers(previous.get("tiers", {}), tiers),
    }
    if record["result"] == "ok":
        status["last_success"] = {
            "finished": record["finished"],
            "seconds": record["seconds"],
            "steps": {k: v.get("seconds") for k, v in record["steps"].items()},
        }
    write_atomic(Path(state_dir) / STATUS_FILE, status)
    return status


def _merge_tiers(previous: Mapping[str, Any], tiers: Mapping[str, Mapping[str, Any]]
                 ) -> dict[str, Any]:
    """Per tier, this run's facts over the last known ones: a tier this run could not reach
    ({"ok": false, "error": ..., "failed": ...}) keeps the picture of its last success (its
    "seen" time says how old it is); a tier this run did not touch keeps all of it."""
    merged = {k: dict(v) for k, v in previous.items() if isinstance(v, Mapping)}
    for tier, facts in tiers.items():
        merged[tier] = {**merged.get(tier, {}), **facts}
    return merged


def tier_summary(snapshots: list[dict[str, Any]], seen: str | None = None) -> dict[str, Any]:
    """Counts and the newest snapshot of a tier, from `restic snapshots --json`. Safety
    snapshots (taken by a restore before it touches anything, backup.safety) are counted apart:
    they are no backup of the night, so neither the newest nor the oldest."""
    safety = [s for s in snapshots if SAFETY in (s.get("tags") or ())]
    snapshots = [s for s in snapshots if SAFETY not in (s.get("tags") or ())]
    newest = max(snapshots, key=lambda s: parse_restic_time(s["time"]), default=None)
    oldest = min(snapshots, key=lambda s: parse_restic_time(s["time"]), default=None)
    tags: dict[str, int] = {}
    for s in snapshots:
        for tag in s.get("tags") or ():
            if not is_record(tag):  # a dump's sha256 is no category to count
                tags[tag] = tags.get(tag, 0) + 1
    return {
        "seen": seen or utc_now(),
        "snapshots": len(snapshots),
        "safety_snapshots": len(safety),
        "by_tag": tags,
        "newest": None if newest is None else {"id": newest["id"], "time": newest["time"],
                                               "tags": newest.get("tags") or []},
        "oldest_time": None if oldest is None else oldest["time"],
    }


def directory_size(path: str | Path) -> int:
    """Bytes on disk under `path` (a local repository), without following links."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total
