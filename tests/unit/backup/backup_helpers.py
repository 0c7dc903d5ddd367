"""Snapshot entries shaped like `restic snapshots --json`, from readable local times."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def paris(text: str) -> datetime:
    """'2025-03-30 03:15' as an aware datetime in Europe/Paris."""
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


def snap(local: str, *tags: str, original: str | None = None, sid: str = "") -> dict[str, Any]:
    """A restic entry taken at local Paris time `local`, with nanoseconds like restic."""
    moment = paris(local)
    iso = moment.isoformat(timespec="microseconds")
    entry: dict[str, Any] = {
        "id": sid or hashlib.sha256(f"{local}{tags}".encode()).hexdigest(),
        "time": f"{iso[:26]}123{iso[26:]}",
        "tags": list(tags) or None,
        "hostname": "web-villeparisis",
        "paths": ["/srv/site"],
    }
    if original:
        entry["original"] = original
    return entry
