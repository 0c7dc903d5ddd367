"""The inventory document: the hinge between provisioning (infra/ or lab/) and configuration.

Roles and tests read only this document, never Pulumi internals, so they work the same on OVH
and in the lab. Built here, from the model plus what the cloud (or the lab) returned.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.topology import plan_hosts
from model.types import Acme, Stack

SCHEMA_PATH = Path(__file__).with_name("inventory.schema.json")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class HostAddresses:
    name: str
    private_ip: str
    public_ip: str | None = None  # the host's own public address (proxy, bastion)
    extra_public_ips: tuple[str, ...] = ()  # per-site Additional IPs routed to it (proxy)


def build_inventory(stack: Stack, *, source: str, hosts: Sequence[HostAddresses],
                    site_public_ips: Mapping[str, str],
                    host_key_fingerprints: Mapping[str, str]) -> dict[str, Any]:
    by_name = {h.name: h for h in hosts}
    plans = plan_hosts(stack)
    missing = [p.name for p in plans if p.name not in by_name]
    if missing:
        raise ValueError(f"no addresses for hosts: {', '.join(missing)}")
    doc_hosts = []
    for plan in plans:
        a = by_name[plan.name]
        names = [plan.name, a.private_ip, *([a.public_ip] if a.public_ip else [])]
        entry: dict[str, Any] = {
            "name": plan.name, "role": plan.role, "region": plan.region,
            "private_ip": a.private_ip, "public_ip": a.public_ip,
            "site_ips": list(a.extra_public_ips), "sites": list(plan.sites),
            "host_key_fingerprint": host_key_fingerprints[plan.name],
            "host_cert_principals": names,
        }
        if plan.tier:
            entry["tier"] = plan.tier
        doc_hosts.append(entry)
    return {
        "schema_version": SCHEMA_VERSION,
        "environment": stack.environment,
        "source": source,
        "dns_zone": stack.ovh.dns_zone,
        "indexable": stack.exposure.indexable,
        "exposure_allow": [str(n) for n in stack.exposure.allow],
        "admin_networks": [str(n) for n in stack.admin_networks],
        "private_cidr": str(stack.network.private_cidr),
        "ssh": {
            "login_user": stack.ssh.login_user,
            "user_ca_public_key": stack.ssh.user_ca_public_key,
            "host_ca_public_key": stack.ssh.host_ca_public_key,
            "principals": {p: list(roles) for p, roles in stack.ssh.principals},
        },
        "bastion": "ops",
        "storage": {"a": "backup-a", "b": "backup-b",
                    "site_quota_gb": stack.storage.quota_gb(len(stack.sites))},
        "hosts": doc_hosts,
        "sites": [_site(s, site_public_ips[s.name]) for s in stack.sites],
        "backup": dataclasses.asdict(stack.backup),
        "tls": dataclasses.asdict(stack.tls),
        "monitoring": _monitoring(stack),
        **({"acme": _acme(stack)} if stack.acme is not None else {}),
        "secrets": {f"db_password_{s.name}": {"ref": f"host-file:{s.host}:/etc/hosting/"
                                              f"{s.name}/db.cnf"} for s in stack.sites},
    }


def _acme(stack: Stack) -> dict[str, Any]:
    assert stack.acme is not None
    return acme_doc(stack.acme)


def acme_doc(acme: Acme) -> dict[str, Any]:
    """`hosting:acme` as the inventory's `acme` section for roles/acme (issue 14), each set
    with its lineage's name resolved; no sets: the role derives the default one from the
    sites. The lab writes its own (pebble's directory) through here too (lab/acme.py)."""
    doc = dataclasses.asdict(acme)
    doc["certificates"] = [{"name": c.lineage, "names": list(c.names)}
                           for c in acme.certificates]
    if not doc["certificates"]:
        del doc["certificates"]
    if not doc["lab"]:
        del doc["lab"]
    return doc


def _monitoring(stack: Stack) -> dict[str, Any]:
    """Thresholds and timings for roles/monitoring (the stack file's key names)."""
    doc = dataclasses.asdict(stack.monitoring)
    email = doc.pop("email")
    if email:
        email["from"] = email.pop("sender")
        doc["email"] = email
    return doc


def _site(site: Any, public_ip: str) -> dict[str, Any]:
    return {
        "name": site.name, "domain": site.domain, "aliases": list(site.aliases),
        "host": site.host, "public_ip": public_ip, "database": site.database,
        "php": dataclasses.asdict(site.php), "drupal": dataclasses.asdict(site.drupal),
        "codebase": dataclasses.asdict(site.codebase), "backup_time": site.backup_time,
        **({"headers": dataclasses.asdict(site.headers)} if site.headers else {}),
        **({"update": {k: list(v) if isinstance(v, tuple) else v
                       for k, v in dataclasses.asdict(site.update).items()}}
           if site.update else {}),
    }


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def validate_inventory(doc: Mapping[str, Any]) -> None:
    """Raise jsonschema.ValidationError naming the failing field, or return quietly."""
    import jsonschema

    jsonschema.validate(doc, load_schema())
    names = [h["name"] for h in doc["hosts"]]
    for site in doc["sites"]:
        if site["host"] not in names:
            raise jsonschema.ValidationError(f"sites: {site['name']} lives on unknown host "
                                             f"{site['host']!r}")
