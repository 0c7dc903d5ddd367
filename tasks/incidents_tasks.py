"""`fab incidents`: the incident record on ops (R-INC-4, issue 13), as a table or JSON.

Every alert notification (firing, resolved) Alertmanager sent to the receiver, and every
restore, failed release and failed update the tasks recorded (tasks/incident_record.py), oldest
first; the log's rotated files included (kept two years, roles/monitoring/incidents.py).
"""
from __future__ import annotations

import json
from typing import Any

from invoke import task
from invoke.exceptions import Exit

from engine.access import AccessError
from engine.inventory import InventoryError
from tasks.incident_record import ByName, IncidentError, read_incidents
from tasks.web_tasks import connected

COLUMNS = (("time", 20), ("kind", 7), ("status", 8), ("severity", 8), ("site", 14),
           ("host", 16), ("what", 40), ("resolved", 20))


def select(records: list[dict[str, Any]], site: str = "", kind: str = "",
           last: int = 0) -> list[dict[str, Any]]:
    out = [r for r in records if (not site or r.get("site") == site)
           and (not kind or r.get("kind") == kind)]
    return out[-last:] if last else out


def table(records: list[dict[str, Any]]) -> str:
    """One line per record; long fields cut to their column (the JSON has them whole)."""
    def cell(value: Any, width: int) -> str:
        text = "-" if value in (None, "") else str(value)
        return (text[:width - 1] + "…") if len(text) > width else text.ljust(width)

    lines = ["  ".join(name.upper().ljust(w) for name, w in COLUMNS).rstrip()]
    for r in records:
        lines.append("  ".join(cell(r.get(name), w) for name, w in COLUMNS).rstrip())
    lines.append(f"{len(records)} record(s)")
    return "\n".join(lines)


@task(help={"env": "lab | prod | preprod (default lab)", "json": "one JSON object per line",
            "site": "only this site's records", "kind": "alert | restore | release | update",
            "last": "only the last N records", "inventory": "inventory JSON file",
            "identity": "your key (with KEY-cert.pub)"})
def incidents(c, env="lab", json_=False, site="", kind="", last=0, inventory="",
              identity=""):
    """Print the incident record on ops (alerts, restores, failed releases), oldest first."""
    try:
        with connected(env, inventory, identity) as (inv, connect):
            records = read_incidents(inv, ByName(connect))
    except (InventoryError, AccessError, IncidentError) as exc:
        raise Exit(f"incidents: {exc}", code=1) from exc
    except Exception as exc:  # noqa: BLE001 -- SSH errors of every kind: say which
        raise Exit(f"incidents: ops unreachable: {exc}", code=1) from exc
    chosen = select(records, site, kind, int(last))
    if json_:
        for r in chosen:
            print(json.dumps(r, sort_keys=True))
    else:
        print(table(chosen))
