"""`fab deploy`: converge every selected host to its roles, in parallel."""
from __future__ import annotations

from collections.abc import Callable

from invoke import task
from invoke.exceptions import Exit

from engine.access import Access, AccessError, credentials
from engine.inventory import InventoryError, load
from engine.report import details, notes_summary, summary_table
from engine.run import RunReport, converge_hosts
from roles import registry


def run_deploy(env: str = "lab", hosts: str = "", role: str = "", check: bool = False,
               inventory: str = "", identity: str = "", ca_dir: str = "",
               verbose: bool = False, workers: int = 0,
               emit: Callable[[str], None] = print) -> RunReport:
    inv = load(env, inventory or None)
    creds = credentials(env, identity, ca_dir, inv=inv)
    chosen = inv.select(hosts, role)
    mode = "check (nothing is changed)" if check else "apply"
    emit(f"deploy {env}: {len(chosen)} host(s), {mode}")
    # The proxy -> web hop's certificates, issued or renewed in the CA directory before
    # converging, like the user KRL is read from it (issue 19 item 6; docs/web-tier.md).
    settings = creds.settings(inv, emit=emit)
    if settings.internal_tls is None:
        emit(f"deploy {env}: no internal CA in {creds.ca_dir} (`fab ca.create`): the proxy -> "
             "web certificates on the hosts are left as they are")
    report = converge_hosts(inv, Access(inv, creds), chosen, registry.desired,
                            settings, check=check, emit=emit, workers=workers)
    for r in report.results:
        text = details(r, verbose)
        if text:
            emit(text)
    for line in notes_summary(report.results):
        emit(line)
    emit(summary_table(report.results, report.seconds, check))
    return report


@task(help={
    "env": "lab | prod | preprod (default lab)",
    "hosts": "comma-separated host names (default: all)",
    "role": "only hosts of this inventory role (proxy, web, ops, storage)",
    "check": "show what would change (actions and unified diffs); change nothing",
    "inventory": "inventory JSON file instead of the lab's or Pulumi's stack output",
    "identity": "private key whose KEY-cert.pub is your user certificate",
    "ca-dir": "CA directory (user KRL pushed to hosts, host KRL checked)",
    "verbose": "list every action done and every skipped step",
    "workers": "hosts converged at once (default: all, up to 16)",
})
def deploy(c, env="lab", hosts="", role="", check=False, inventory="", identity="", ca_dir="",
           verbose=False, workers=0):
    """Converge hosts to their roles (baseline everywhere); --check: diffs, no change."""
    try:
        report = run_deploy(env, hosts, role, check, inventory, identity, ca_dir, verbose,
                            int(workers))
    except (InventoryError, AccessError) as exc:
        raise Exit(f"deploy: {exc}", code=2) from exc
    if not report.ok:
        raise Exit("deploy: some hosts failed (see above)", code=1)
