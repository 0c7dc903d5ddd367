"""`fab decommission --site X [--purge-backups-now] [--yes] [--unprotect] [--out DIR]`
(issue 16, R-GDPR-8): delete the site's live data everywhere, close every access it had,
purge its backups now or schedule their purge at expiry, and write the deletion report
(decommission.md + decommission.json). The work is in tasks/decommission_run.py; docs/
decommission.md says what goes where. Exit 0 when every step and check passed, 1 otherwise,
2 when nothing was changed (bad input, a host down, not confirmed)."""
from __future__ import annotations

from invoke import task
from invoke.exceptions import Exit

from engine.access import AccessError
from engine.inventory import InventoryError
from sshtrust._run import SshTrustError
from tasks.decommission_plan import PlanError
from tasks.decommission_run import DecommissionError, Options, run_decommission


@task(help={"site": "site name (required)",
            "purge-backups-now": "delete the site's backups on every tier at once (default: "
                                 "kept append-only until their expiry, then purged by the "
                                 "storage servers' own timer)",
            "yes": "do not ask for the domain to be typed back (CI)",
            "unprotect": "run `pulumi state unprotect` for the site's protected resources",
            "out": "where to write decommission.md and decommission.json "
                   "(default ./decommission-ENV-SITE-TIME)",
            "stack-file": "the model the environment comes from (default Pulumi.ENV.yaml; "
                          "the lab: Pulumi.prod.yaml)",
            "env": "lab | prod | preprod (default lab)", "inventory": "inventory JSON file",
            "identity": "your SSH key (with KEY-cert.pub)", "ca-dir": "CA directory"},
      name="decommission")
def decommission(c, site="", purge_backups_now=False, yes=False, unprotect=False, out="",
                 stack_file="", env="lab", inventory="", identity="", ca_dir=""):
    """Delete a site's data everywhere and report it (R-GDPR-8); backups purged at expiry."""
    options = Options(env, site, yes, purge_backups_now, unprotect, out, inventory, identity,
                      ca_dir, stack_file)
    try:
        report = run_decommission(options)
    except (DecommissionError, PlanError, InventoryError, AccessError, SshTrustError) as exc:
        raise Exit(f"decommission: {exc}", code=2) from exc
    for error in report.errors:
        print(f"ERROR {error}")
    if not report.ok:
        raise Exit(f"decommission {site}: {len(report.errors)} error(s); see the report",
                   code=1)
    print(f"decommission {site}: done; now remove it from the model (the report's diff), "
          "then pulumi up and fab deploy")
