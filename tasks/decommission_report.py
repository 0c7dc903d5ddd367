"""The deletion report of `fab decommission` (issue 16, R-GDPR-8): decommission.json (every
stage, step and check, machine-readable) and decommission.md (for the client and an auditor:
what was deleted, where, when, the checks that it is gone, when the backups go, and what is
left to do on the Pulumi side)."""
from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

from tasks import decommission_plan as plan


def pulumi_section(env: str, site: str, stack_file: Path) -> dict[str, Any]:
    """The model change (a diff of the stack file) and what `pulumi up` then deletes."""
    text = stack_file.read_text()
    removals = plan.plan_pulumi(text, site, stack_file.name)
    stack = "prod" if env == "lab" else env
    return {
        "stack_file": shown(stack_file),
        "model_diff": plan.model_diff(text, site, stack_file.name),
        "removals": [r.__dict__ for r in removals],
        "commands": [
            *(shlex.join(plan.unprotect_argv(stack, r)) for r in removals if r.protect),
            f"pulumi preview --stack {stack} --diff",
            f"pulumi up --stack {stack}",
            f"fab deploy --env {env}",
        ],
    }


def shown(path: Path) -> str:
    """The stack file as the admin names it: relative to the repository when inside it."""
    from engine.inventory import REPO

    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _status(ok: bool) -> str:
    return "ok" if ok else "**FAILED**"


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"# Decommission of {doc['site']} ({doc['domain']}), {doc['environment']}", "",
        f"- started {doc['started']}, finished {doc['finished']}, by {doc['operator']}",
        f"- backups: {'purged now' if doc['mode'] == 'purge-now' else 'purged at their expiry'}",
        f"- result: {'every step and check passed' if doc['ok'] else 'INCOMPLETE: see errors'}",
        "",
    ]
    if doc["errors"]:
        lines += ["## Errors", "", *(f"- {e}" for e in doc["errors"]), ""]
    lines += ["## What was done, where, when", "", "| when (UTC) | stage | where | result | "
              "detail |", "|---|---|---|---|---|"]
    for s in doc["stages"]:
        detail = s["detail"].replace("|", "\\|").replace("\n", " ")[:300]
        lines.append(f"| {s['at']} | {s['stage']} | {s['where']} | {_status(s['ok'])} | "
                     f"{detail} |")
    deleted = [(s["where"], x) for s in doc["stages"] for x in s["steps"]]
    if deleted:
        lines += ["", "## Deleted", "", "| host | what | item | result |", "|---|---|---|---|"]
        lines += [f"| {host} | {x['what']} | `` {x['where']} `` | {_status(x['ok'])} |"
                  for host, x in deleted]
    checks = [(s["where"], x) for s in doc["stages"] for x in s["checks"]]
    if checks:
        lines += ["", "## Checks that it is gone", "", "| host | check | result |",
                  "|---|---|---|"]
        lines += [f"| {host} | {x['what']} | {_status(x['ok'])}"
                  f"{' ' + x['detail'] if x['detail'] and not x['ok'] else ''} |"
                  for host, x in checks]
    lines += ["", "## Backups", ""]
    for tier, b in sorted(doc["backups"].items()):
        when = (f"deleted {b['purged_at']}" if "purged_at" in b else
                f"kept append-only (no one can write or delete), rotated as before, purged "
                f"on {b['purge_at']} by {b.get('host', 'the storage server')}'s own timer")
        lines.append(f"- {tier}: {when}")
    p = doc["pulumi"]
    lines += ["", "## Left to do: the model and Pulumi", ""]
    if "error" in p:
        lines.append(f"The plan could not be computed: {p['error']}")
    else:
        lines += [f"Remove the site from `{p['stack_file']}` (this change, nothing else):", "",
                  "```diff", p["model_diff"].rstrip("\n"), "```", "",
                  "`pulumi up` then deletes (protected ones need `pulumi state unprotect` "
                  "first, which `--unprotect` runs):", ""]
        lines += [f"- `{r['type']}` {r['name']}{' (protected)' if r['protect'] else ''}"
                  for r in p["removals"]]
        lines += ["", "Then, in this order:", "", "```sh", *p["commands"], "```"]
    lines += ["", "Until the model change, `fab deploy` stops on the web host, the proxy and "
              "ops, naming the site: the decommission left its tombstone on each "
              "(`/var/lib/hosting/decommissioned/<site>.json`) so that the site does not come "
              "back on the proxy or in monitoring. Change the model first.", ""]
    return "\n".join(lines)


def write_report(report: Any, out: Path) -> None:
    doc = report.document()
    for name, text in (("decommission.json", json.dumps(doc, indent=2) + "\n"),
                       ("decommission.md", markdown(doc))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)
