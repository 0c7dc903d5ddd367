"""What the lab hands to roles and tests: the inventory document (built by the model's own code,
the same schema Pulumi exports), an ssh_config and a known_hosts trusting the lab's host CA.

What an OVH admin keeps on their own machine (the CA directory, their key and certificate, the
proxy's certificate once ACME got it), the lab keeps in its state directory and names in the
inventory's optional fields (`ssh.ca_dir`, `ssh.identity`, `tls.source`), so the engine and the
roles find it there without knowing the lab (issue 12)."""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lab import acme, tls
from lab.plan import LabPlan
from model.inventory import HostAddresses, build_inventory, validate_inventory
from sshtrust.openssh import inventory_ssh_config, known_hosts_line


def inventory_document(plan: LabPlan, fingerprints: Mapping[str, str], *,
                       ca_dir: Path | None = None, identity: Path | None = None,
                       tls_dir: Path | None = None) -> dict[str, Any]:
    """The inventory; with `tls_dir`, the proxy's certificate is issued (or kept) there first,
    for the sites of this very document."""
    hosts = [HostAddresses(h.name, str(h.private_ip),
                           str(h.public_ip) if h.public_ip else None,
                           tuple(str(a) for a in h.site_ips)) for h in plan.hosts]
    doc = build_inventory(plan.stack, source="lab", hosts=hosts, site_public_ips=plan.site_ips,
                          host_key_fingerprints=fingerprints)
    if ca_dir is not None:
        doc["ssh"]["ca_dir"] = str(ca_dir)
    if identity is not None:
        doc["ssh"]["identity"] = str(identity)
    if tls_dir is not None:
        doc["tls"]["source"] = tls.ensure_for_inventory(tls_dir, doc)
    if acme.enabled():  # LAB_ACME=1: certbot on ops against the lab's pebble (issue 14)
        acme.apply(doc, tls_dir)
    else:  # never the stack's real ACME directory from the lab
        doc.pop("acme", None)
    validate_inventory(doc)
    return doc


def ssh_config(doc: Mapping[str, Any], *, known_hosts: Path, user_key: Path,
               user_cert: Path) -> str:
    """Plain `ssh -F` (and testinfra's ssh:// backend, and Fabric) reach every host by its
    inventory name: the bastion on its public address, everything else through it, as on OVH
    (sshtrust.openssh: certificate-only, host certificate checked for the name)."""
    return inventory_ssh_config(
        doc, known_hosts=known_hosts, user_key=user_key, user_cert=user_cert,
        header="# Written by `python -m lab up`: regenerated on every up, do not edit.\n")


def known_hosts(host_ca_pub: Path) -> str:
    return known_hosts_line(host_ca_pub)


def write_if_changed(path: Path, content: str, mode: int = 0o644) -> bool:
    """Write only when the content differs: a second `up` changes nothing."""
    if path.exists() and path.read_text() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(content)
    tmp.chmod(mode)
    tmp.rename(path)
    return True


def dump(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"
