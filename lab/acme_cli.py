"""`python -m lab.acme_cli` (scripts/lab-full with LAB_ACME=1): the wildcard by ACME DNS-01
on a lab deployed with the switch on (lab/acme.py, docs/tls.md). Apart from lab/acme.py, which
lab/inventory.py imports: this one needs the Lab itself."""
from __future__ import annotations

import json
import sys
from typing import Any

from engine.access import resolve_ca_dir
from lab.acme import apply, enabled, pebble_root, setup, write_client_bundle
from lab.config import load_config
from lab.lab import Lab
from tasks import acme_tasks
from tasks.deploy import run_deploy
from tasks.web_tasks import connected


def main() -> int:
    """Start the stand-ins, trust pebble's root beside the lab CA (the inventory's client_ca:
    the monitoring's blackbox, curl), converge ops and the proxy, give certbot its credentials
    and the hook its SSH certificate (the tasks' own code), then issue; the deploy hook
    installs the certificate on the proxy."""
    if not enabled():
        print("lab.acme_cli: LAB_ACME is not 1: the lab uses its own CA's certificate",
              file=sys.stderr)
        return 0
    lab = Lab(load_config(), log=lambda m: print(m, file=sys.stderr))
    doc = json.loads(lab.inventory_path.read_text())

    def ops_root(argv: list[str], **kw: Any) -> Any:
        return lab.container("ops").exec(argv, **kw)

    creds = setup(ops_root, lab.tls_dir, doc)
    write_client_bundle(lab.tls_dir, pebble_root(ops_root))
    apply(doc, lab.tls_dir)
    lab.inventory_path.write_text(json.dumps(doc, indent=2) + "\n")
    report = run_deploy("lab", hosts="ops,proxy", emit=print)
    if not report.ok:
        print("lab.acme_cli: fab deploy of ops and the proxy failed", file=sys.stderr)
        return 1
    with connected("lab") as (inv, connect):
        acme_tasks.write_credentials(inv, connect, creds)
        done = acme_tasks.setup_cert(inv, connect, resolve_ca_dir("lab", "", inv))
        print(f"lab.acme_cli: {done}")
        acme = acme_tasks._acme(inv)
        ops = connect("ops")
        acme_tasks.issue_all(acme, lambda argv, what: acme_tasks._run(
            ops, argv, what, timeout=acme_tasks.ISSUE_TIMEOUT))
    sets = "; ".join(f"{x.lineage}: {', '.join(x.names)}" for x in acme.certificates)
    print(f"lab.acme_cli: {sets} issued by pebble, installed on the proxy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
