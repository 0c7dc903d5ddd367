"""`python -m lab.acme_cli` (scripts/lab-full with LAB_ACME=1): the wildcard by ACME DNS-01
on a lab deployed with the switch on (lab/acme.py, docs/tls.md). Apart from lab/acme.py, which
lab/inventory.py imports: this one needs the Lab itself."""
from __future__ import annotations

import sys

from engine.access import resolve_ca_dir
from engine.inventory import load
from lab.acme import enabled, setup
from lab.config import load_config
from lab.lab import Lab
from tasks import acme_tasks
from tasks.web_tasks import connected


def main() -> int:
    """Start the stand-ins, give certbot its credentials and the hook its SSH certificate
    (the tasks' own code), then issue; the deploy hook installs it on the proxy."""
    if not enabled():
        print("lab.acme: LAB_ACME is not set: the lab uses its own CA's certificate",
              file=sys.stderr)
        return 0
    lab = Lab(load_config(), log=lambda m: print(m, file=sys.stderr))
    inv = load("lab")
    creds = setup(lambda argv, **kw: lab.container("ops").exec(argv, **kw), lab.tls_dir,
                  inv.doc)
    with connected("lab") as (inv, connect):
        acme_tasks.write_credentials(inv, connect, creds)
        print(f"lab.acme: {acme_tasks.setup_cert(inv, connect, resolve_ca_dir('lab', '', inv))}")
        acme = acme_tasks._acme(inv)
        acme_tasks._run(connect("ops"), acme_tasks.issue_argv(acme), "certbot certonly",
                        timeout=acme_tasks.ISSUE_TIMEOUT)
    print(f"lab.acme: {', '.join(acme.names)} issued by pebble and installed on the proxy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
