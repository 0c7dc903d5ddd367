"""What `fab decommission` decides before it touches anything (issue 16, R-GDPR-8). Pure.

- the inventory WITHOUT the site (`inventory_without`): what the proxy and ops are converged
  to (their vhost, IP binding, firewall and monitoring targets then no longer name the site),
  and what the inventory becomes once the site is out of the model;
- the model change (`model_without`): Pulumi.<env>.yaml without the site's `hosting:sites`
  item, as text and as a unified diff the report prints (the command never edits the file);
- the Pulumi side (`pulumi_removals`): the resources a `pulumi up` of the changed model
  deletes, found by building both stacks under Pulumi's mocks, protected ones flagged: each
  needs `pulumi state unprotect` first (the command's --unprotect step);
- when the backups go (`purge_dates`): each storage tier keeps a snapshot at most its keep
  days (the rotation's policy), so the last one, taken now, is gone after them; then the
  storage server's own timer purges what is left (backup/decommission.py).
"""
from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from backup.policy import Policy


class PlanError(RuntimeError):
    pass


def inventory_without(doc: Mapping[str, Any], site: str) -> dict[str, Any]:
    """The inventory document without `site`, its web host, its public IP on the proxy and
    the secrets kept on that host. Refuses a web host that serves another site too."""
    sites = [s for s in doc["sites"] if s["name"] == site]
    if not sites:
        names = ", ".join(s["name"] for s in doc["sites"])
        raise PlanError(f"--site {site!r}: not in the inventory; sites: {names}")
    gone = sites[0]
    web = gone["host"]
    host = next((h for h in doc["hosts"] if h["name"] == web), None)
    if host is None:
        raise PlanError(f"sites[{site}].host: {web} is not among the inventory's hosts")
    others = [s for s in host.get("sites", []) if s != site]
    if others:
        raise PlanError(f"{web} serves {', '.join(others)} too: decommission deletes a web "
                        "host's data and supports one site per web host (the topology's)")
    out = copy.deepcopy(dict(doc))
    out["sites"] = [s for s in out["sites"] if s["name"] != site]
    out["hosts"] = [h for h in out["hosts"] if h["name"] != web]
    for h in out["hosts"]:
        h["site_ips"] = [ip for ip in h.get("site_ips", []) if ip != gone["public_ip"]]
        h["sites"] = [s for s in h.get("sites", []) if s != site]
    out["secrets"] = {k: v for k, v in out.get("secrets", {}).items()
                      if f":{web}:" not in str(v.get("ref", "")) and not k.endswith(f"_{site}")}
    return out


_ITEM = re.compile(r"^(\s*)- name:\s*(\S+)\s*(#.*)?$")


def model_without(text: str, site: str) -> str:
    """The stack file's text without the `hosting:sites` item `- name: <site>` (comments and
    every other line kept as they are)."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.strip() == "hosting:sites:"), None)
    if start is None:
        raise PlanError("the stack file has no `hosting:sites:` section")
    found = [i for i in range(start + 1, len(lines))
             if (m := _ITEM.match(lines[i])) and m.group(2).strip("'\"") == site]
    if len(found) != 1:
        raise PlanError(f"hosting:sites: {len(found)} items named {site!r} (expected one)")
    first = found[0]
    indent = len(_ITEM.match(lines[first]).group(1))  # type: ignore[union-attr]
    end = first + 1
    while end < len(lines):  # the item's own lines are indented deeper than its "- "
        line = lines[end]
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        end += 1
    return "".join(lines[:first] + lines[end:])


def model_diff(text: str, site: str, file: str) -> str:
    new = model_without(text, site)
    return "".join(difflib.unified_diff(text.splitlines(keepends=True),
                                        new.splitlines(keepends=True), f"a/{file}", f"b/{file}"))


@dataclass(frozen=True)
class Removal:
    type: str
    name: str
    urn: str
    protect: bool


def pulumi_removals(before: list[Any], after: list[Any]) -> list[Removal]:
    """Resources registered in `before` and not in `after` (infra.mockrun.Registered lists,
    keyed by URN as Pulumi's state is); a changed URN is a delete + create, so this is what
    `pulumi up` deletes."""
    kept = {r.urn for r in after}
    return [Removal(r.type, r.name, r.urn, r.protect) for r in before if r.urn not in kept]


def plan_pulumi(stack_text: str, site: str, file: str) -> list[Removal]:
    """Both stacks built under Pulumi's mocks (no engine, no OVH): what the model change
    removes. Imported late: it loads the providers (about a second)."""
    from infra.mockrun import build_under_mocks
    from model.parse import parse_stack

    before = build_under_mocks(parse_stack(stack_text, file)).resources
    after = build_under_mocks(parse_stack(model_without(stack_text, site), file)).resources
    return pulumi_removals(before, after)


def unprotect_argv(env: str, removal: Removal) -> list[str]:
    return ["pulumi", "state", "unprotect", "--stack", env, "--yes", removal.urn]


def purge_dates(policy: Mapping[str, Any], now: datetime) -> dict[str, datetime]:
    """{tier: when its last snapshot has left by rotation} for A and B, a day's margin added
    (ages are whole local days)."""
    p = Policy(**{k: v for k, v in policy.items() if k.endswith("_days")})
    a = min(p.a_keep_days, p.max_age_days)
    b = min(max(p.weekly_keep_days, p.monthly_keep_days), p.max_age_days)
    return {"a": now + timedelta(days=a + 1), "b": now + timedelta(days=b + 1)}
