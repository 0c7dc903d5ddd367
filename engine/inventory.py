"""The inventory document (model/inventory.schema.json), loaded and typed for the roles.

Where it comes from (`fab deploy --env ...`):
  lab            `python -m lab inventory` (the lab's state directory; LAB_* variables apply)
  prod, preprod  `pulumi stack output inventory --show-secrets --json -s ENV`
  any            `--inventory FILE`, a JSON file with the same document (wins over the above)
Roles read only this document, never Pulumi internals, so they work the same on OVH and in
the lab.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import localcmd
from model.inventory import validate_inventory

ENVIRONMENTS = ("lab", "prod", "preprod")
REPO = Path(__file__).resolve().parent.parent


class InventoryError(RuntimeError):
    pass


@dataclass(frozen=True)
class Host:
    name: str
    role: str
    region: str
    private_ip: str
    public_ip: str | None
    site_ips: tuple[str, ...]
    sites: tuple[str, ...]
    fingerprint: str  # SHA256 of the host key, pinned at provisioning (never learnt by TOFU)
    cert_principals: tuple[str, ...]
    tier: str | None = None


@dataclass(frozen=True)
class Inventory:
    doc: Mapping[str, Any]
    hosts: tuple[Host, ...]

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Inventory:
        try:
            validate_inventory(doc)
        except Exception as exc:  # jsonschema.ValidationError: say which field
            raise InventoryError(f"inventory is invalid: {getattr(exc, 'message', exc)}") from exc
        hosts = tuple(Host(h["name"], h["role"], h["region"], h["private_ip"], h["public_ip"],
                           tuple(h["site_ips"]), tuple(h["sites"]), h["host_key_fingerprint"],
                           tuple(h["host_cert_principals"]), h.get("tier"))
                      for h in doc["hosts"])
        return cls(doc, hosts)

    # -- accessors --------------------------------------------------------------------------------
    @property
    def environment(self) -> str:
        return str(self.doc["environment"])

    @property
    def source(self) -> str:
        return str(self.doc["source"])

    @property
    def login_user(self) -> str:
        return str(self.doc["ssh"]["login_user"])

    @property
    def user_ca_public_key(self) -> str:
        return str(self.doc["ssh"]["user_ca_public_key"]).strip()

    @property
    def host_ca_public_key(self) -> str:
        return str(self.doc["ssh"]["host_ca_public_key"]).strip()

    @property
    def principals(self) -> dict[str, tuple[str, ...]]:
        """principal -> roles where it may log in (R-INC-3)."""
        return {p: tuple(roles) for p, roles in self.doc["ssh"]["principals"].items()}

    def principals_for(self, role: str) -> tuple[str, ...]:
        return tuple(p for p, roles in self.principals.items() if role in roles)

    # -- where this machine finds its material (optional: the lab sets them, OVH does not) --
    def _admin_path(self, section: str, field: str) -> Path | None:
        value = (self.doc.get(section) or {}).get(field)
        return Path(value) if value else None

    @property
    def ssh_ca_dir(self) -> Path | None:
        """`ssh.ca_dir`: the CA directory (user_ca, host_ca, their KRLs) on this machine."""
        return self._admin_path("ssh", "ca_dir")

    @property
    def ssh_identity(self) -> Path | None:
        """`ssh.identity`: the user's private key; its certificate is `<key>-cert.pub`."""
        return self._admin_path("ssh", "identity")

    @property
    def tls_source_dir(self) -> Path | None:
        """`tls.source.directory`: fullchain.pem + privkey.pem for the proxy, on this machine."""
        source = (self.doc.get("tls") or {}).get("source") or {}
        return Path(source["directory"]) if source.get("directory") else None

    @property
    def tls_client_ca(self) -> Path | None:
        """`tls.source.client_ca`: the CA certificate clients must trust (a private CA only)."""
        source = (self.doc.get("tls") or {}).get("source") or {}
        return Path(source["client_ca"]) if source.get("client_ca") else None

    @property
    def admin_networks(self) -> tuple[str, ...]:
        return tuple(self.doc.get("admin_networks", ()))

    @property
    def exposure_allow(self) -> tuple[str, ...]:
        return tuple(self.doc.get("exposure_allow", ()))

    @property
    def bastion(self) -> Host:
        return self.host(str(self.doc["bastion"]))

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise InventoryError(f"no host {name!r} in the inventory; hosts: "
                             f"{', '.join(h.name for h in self.hosts)}")

    def by_role(self, role: str) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.role == role)

    def select(self, names: str = "", role: str = "") -> tuple[Host, ...]:
        """Hosts named in `names` (comma-separated) and/or of `role`; all when both are empty."""
        chosen = self.hosts
        if names:
            wanted = [n.strip() for n in names.split(",") if n.strip()]
            for n in wanted:
                self.host(n)  # unknown names are an error, not silently nothing
            chosen = tuple(h for h in chosen if h.name in wanted)
        if role:
            roles = {h.role for h in self.hosts}
            if role not in roles:
                raise InventoryError(f"no host has role {role!r}; roles: "
                                     f"{', '.join(sorted(roles))}")
            chosen = tuple(h for h in chosen if h.role == role)
        return chosen


def load(env: str, inventory_file: str | Path | None = None) -> Inventory:
    if inventory_file:
        path = Path(inventory_file)
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InventoryError(f"cannot read inventory {path}: {exc}") from exc
        return Inventory.from_doc(doc)
    if env == "lab":
        argv = [sys.executable, "-m", "lab", "inventory"]
    elif env in ("prod", "preprod"):
        argv = ["pulumi", "stack", "output", "inventory", "--show-secrets", "--json", "-s", env]
    else:
        raise InventoryError(f"unknown environment {env!r}; one of {', '.join(ENVIRONMENTS)}")
    try:
        proc = localcmd.run(argv, timeout=300, cwd=REPO)
    except localcmd.CommandError as exc:
        raise InventoryError(f"cannot read the inventory: {exc}") from None
    try:
        doc = json.loads(proc.stdout)
    except ValueError as exc:
        raise InventoryError(f"{' '.join(argv)} printed no JSON document: {exc}") from exc
    inv = Inventory.from_doc(doc)
    if env != "lab" and inv.environment != env:
        raise InventoryError(f"stack {env} exported an inventory for {inv.environment!r}")
    return inv
