"""`fab update` and `fab updates` (issue 15; R-MNT-1, R-MNT-2, R-HOST-3, R-INC-4).

    fab update --site X --ref REF [--env prod] [--check] [--path DIR] [--out DIR]
               [--smoke PATH[=MARKER] ...] [--sanitize drupal,fixture] [--sanitize-sql SQL ...]
               [--check-command CMD] [--preprod-env preprod | --preprod-inventory FILE]
    fab updates [--env prod] [--site X] [--json]

The workflow is tasks/update_run.py's; this module reads the options, loads both
environments (prod and its preprod: `--env prod` pairs with the `preprod` stack, the lab with
a second lab's inventory given by --preprod-inventory) and prints the report.
"""
from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

from invoke import task
from invoke.exceptions import Exit

from engine.access import AccessError
from engine.inventory import InventoryError
from roles.monitoring.incidents import UPDATE_LOG
from tasks.incident_record import ByName, IncidentError, read_incidents
from tasks.incidents_tasks import select
from tasks.update_plan import (
    ALLOWED_DOMAIN,
    UpdateInputError,
    UpdatePolicy,
    parse_smoke,
    render_markdown,
)
from tasks.update_run import Side, UpdateError, run_update
from tasks.web_tasks import connected

PREPROD_OF = {"prod": "preprod"}


def settings_from(policy: UpdatePolicy, smoke: list[str], sanitize: str,
                  sanitize_sql: list[str], check_command: str,
                  allowed_email_domain: str) -> UpdatePolicy:
    """The site's `update:` of the model, each option given on the command line replacing
    its key (a pipeline may try a new smoke URL before it lands in the model)."""
    profiles = tuple(p.strip() for p in sanitize.split(",") if p.strip())
    return UpdatePolicy(
        smoke=parse_smoke(smoke) if smoke else policy.smoke,
        sanitize=profiles if sanitize else policy.sanitize,
        sanitize_sql=tuple(sanitize_sql) if sanitize_sql else policy.sanitize_sql,
        allowed_email_domain=allowed_email_domain or policy.allowed_email_domain,
        check_command=check_command or policy.check_command)


def preprod_of(env: str, preprod_env: str, preprod_inventory: str) -> str:
    if preprod_inventory:
        return preprod_env or "preprod"
    if preprod_env:
        return preprod_env
    if env not in PREPROD_OF:
        raise UpdateInputError(f"--env {env}: no preprod pairs with it; give "
                               "--preprod-inventory FILE (a second lab's inventory) or "
                               "--preprod-env")
    return PREPROD_OF[env]


@task(iterable=["smoke", "sanitize_sql"],
      help={"site": "site name (required)", "ref": "the codebase ref to ship (git tag, "
            "branch or commit; `model` = the model's codebase as it is); with --path, a label",
            "env": "lab | prod (default lab)", "check": "stop after the qualification on "
            "preprod (prod untouched)", "path": "ship this local directory (lab, development)",
            "out": "write the report there as JSON and Markdown (default: updates/)",
            "smoke": "PATH or PATH=MARKER that must answer 200 (repeatable; default: the "
                     "site's update.smoke)",
            "sanitize": "profiles of sanitizing SQL, comma-separated (drupal, fixture; default: "
                        "the site's update.sanitize)",
            "sanitize-sql": "one more sanitizing statement (repeatable)",
            "check-command": "your own check, run in the live release as the site's user",
            "allowed-email-domain": "the only e-mail domain left after sanitizing (default: "
                                    f"the site's, else {ALLOWED_DOMAIN})",
            "preprod-env": "the preprod stack (default: preprod for prod)",
            "preprod-inventory": "the preprod inventory JSON (the lab's second lab)",
            "inventory": "prod's inventory JSON file", "identity": "your key (KEY-cert.pub)"})
def update(c, site="", ref="", env="lab", check=False, path="", out="updates", smoke=None,
           sanitize="", sanitize_sql=None, check_command="", allowed_email_domain="",
           preprod_env="", preprod_inventory="", inventory="", identity=""):
    """Qualify REF on a sanitized copy of prod in preprod, then ship it to prod (rollback on
    failure)."""
    try:
        if not site:
            raise UpdateInputError("--site: required")
        if not ref:
            raise UpdateInputError("--ref: required (a git ref, or `model`)")
        settings_from(UpdatePolicy(), smoke or [], sanitize, sanitize_sql or [], "",
                      allowed_email_domain)  # bad options refused before connecting
        penv = preprod_of(env, preprod_env, preprod_inventory)
    except UpdateInputError as exc:
        raise Exit(f"update: {exc}", code=2) from exc
    try:
        with ExitStack() as stack:
            inv, connect = stack.enter_context(connected(env, inventory, identity))
            try:
                pinv, pconnect = stack.enter_context(connected(penv, preprod_inventory,
                                                               identity))
            except (InventoryError, AccessError) as exc:
                raise UpdateError(f"preprod ({penv}) is missing or unreachable: {exc}") from exc
            try:
                policy = inv.site(site).update
            except InventoryError as exc:
                raise UpdateError(f"--site {site!r}: {exc}") from None
            settings = settings_from(policy, smoke or [], sanitize, sanitize_sql or [],
                                     check_command, allowed_email_domain)
            report = run_update(Side(env, inv, connect, inventory, identity),
                                Side(penv, pinv, pconnect, preprod_inventory, identity),
                                site, ref, settings, path or None, check,
                                Path(out) if out else None)
    except (InventoryError, AccessError, UpdateError, UpdateInputError) as exc:
        raise Exit(f"update: {exc}", code=1) from exc
    print(render_markdown(report))
    if report.outcome not in ("live", "qualified"):
        raise Exit(f"update: {report.outcome}", code=1)


@task(help={"env": "lab | prod | preprod (default lab)", "site": "only this site",
            "json": "one JSON object per line", "last": "only the last N",
            "inventory": "inventory JSON file", "identity": "your key (with KEY-cert.pub)"})
def updates(c, env="lab", site="", json_=False, last=0, inventory="", identity=""):
    """Print the update log on ops: one line per `fab update` run."""
    try:
        with connected(env, inventory, identity) as (inv, connect):
            records = read_incidents(inv, ByName(connect), UPDATE_LOG)
    except (InventoryError, AccessError, IncidentError) as exc:
        raise Exit(f"updates: {exc}", code=1) from exc
    chosen = select(records, site, "update", int(last))
    for r in chosen:
        if json_:
            print(json.dumps(r, sort_keys=True))
        else:
            print(f"{r.get('time')}  {r.get('site')}  {r.get('ref')}  {r.get('result')}  "
                  f"qualification {r.get('qualification')}  maintenance "
                  f"{r.get('maintenance_seconds')} s  {str(r.get('artifact'))[:12]}  "
                  f"{r.get('previous')} -> {r.get('release')}")
    if not json_:
        print(f"{len(chosen)} update(s)")
