"""The monitoring settings a role reads: the inventory's `monitoring` section (the model's
`monitoring:` with its defaults filled in, model.inventory), typed; an inventory written before
the section existed gets the model's defaults."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from engine.inventory import Inventory
from model.types import Email, Monitoring

# Where things listen. Prometheus, Alertmanager and the blackbox exporter on ops' loopback
# only (reached through an SSH tunnel, docs/monitoring.md); the node exporter on each host's
# private address (nftables lets only ops' private address in, roles/base/firewall.py).
PROMETHEUS = "127.0.0.1:9090"
ALERTMANAGER = "127.0.0.1:9093"
BLACKBOX = "127.0.0.1:9115"
NODE_EXPORTER_PORT = 9100
# The node exporter's textfile collector: the on-host code writes its *.prom files here.
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
# The SMTP password: a file on ops, never in the model, the inventory or a command line.
SMTP_PASSWORD_FILE = "/etc/prometheus/alertmanager-smtp.password"


def monitoring(inv: Inventory) -> Monitoring:
    return from_doc(inv.doc.get("monitoring") or {})


def from_doc(doc: Mapping[str, Any]) -> Monitoring:
    known = {f.name for f in dataclasses.fields(Monitoring)} - {"email"}
    values = {k: v for k, v in doc.items() if k in known}
    email = None
    if doc.get("email"):
        e = doc["email"]
        email = Email(to=tuple(e["to"]), sender=e["from"], smarthost=e["smarthost"],
                      username=e.get("username", ""), require_tls=e.get("require_tls", True))
    return Monitoring(**values, email=email)
