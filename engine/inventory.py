"""The inventory document (model/inventory.schema.json), loaded and typed for the roles.

Where it comes from (`fab deploy --env ...`):
  lab            `python -m lab inventory` (the lab's state directory; LAB_* variables apply)
  prod, preprod  `pulumi stack output inventory --show-secrets --json -s ENV`
  any            `--inventory FILE`, a JSON file with the same document (wins over the above)
Roles read only this document, never Pulumi internals, so they work the same on OVH and in
the lab. It is typed once, here (`Inventory.from_doc`): hosts, sites and secret references are
frozen dataclasses and each lookup (`host`, `site`, `sites_on`, `storage_host`, `secret`) exists
once; `.doc` stays for writing the document out (an inventory file for testinfra, say).
"""
from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import localcmd
from engine.inventory_parts import (  # noqa: F401 -- re-exported: callers import them here
    SECRET_SCHEMES,
    Host,
    InventoryError,
    SecretRef,
    Site,
    acme_settings,
    site_from_doc,
)
from model.inventory import validate_inventory
from model.types import (
    Acme,
    Tls,
)

ENVIRONMENTS = ("lab", "prod", "preprod")
BACKUP_POLICY_FIELDS = ("timezone", "weekly_day", "local_keep_days", "a_keep_days",
                        "weekly_keep_days", "monthly_keep_days")
REPO = Path(__file__).resolve().parent.parent



@dataclass(frozen=True)
class Inventory:
    doc: Mapping[str, Any]
    hosts: tuple[Host, ...]
    sites: tuple[Site, ...] = ()
    secrets: Mapping[str, SecretRef] = field(default_factory=dict)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Inventory:
        try:
            validate_inventory(doc)
        except Exception as exc:  # jsonschema.ValidationError: say which field
            where = getattr(exc, "json_path", "$").removeprefix("$").lstrip(".")
            raise InventoryError(f"inventory is invalid{f' at {where}' if where else ''}: "
                                 f"{getattr(exc, 'message', exc)}") from exc
        hosts = tuple(Host(h["name"], h["role"], h["region"], h["private_ip"], h["public_ip"],
                           tuple(h["site_ips"]), tuple(h["sites"]), h["host_key_fingerprint"],
                           tuple(h["host_cert_principals"]), h.get("tier"))
                      for h in doc["hosts"])
        names = {h.name for h in hosts}
        secrets = {}
        for key, value in doc["secrets"].items():
            ref = SecretRef.parse(value["ref"], f"secrets.{key}.ref")
            if ref.host and ref.host not in names:
                raise InventoryError(f"secrets.{key}.ref: host {ref.host!r} is not in the "
                                     f"inventory; hosts: {', '.join(sorted(names))}")
            secrets[key] = ref
        sites = tuple(site_from_doc(s, i, secrets) for i, s in enumerate(doc["sites"]))
        acme_settings(doc.get("acme"))  # its field named now, not at the role's turn
        return cls(doc, hosts, sites, secrets)

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
    def indexable(self) -> bool:
        return bool(self.doc.get("indexable", True))

    @property
    def acme(self) -> Acme | None:
        """`acme`, typed (acme_settings); None when absent. Off or on: `.enabled`."""
        return acme_settings(self.doc.get("acme"))

    @property
    def tls(self) -> Tls | None:
        """`tls.certificate` / `tls.key`: where the proxy's certificate and key live on it."""
        tls = self.doc.get("tls") or {}
        if not tls.get("certificate") or not tls.get("key"):
            return None
        return Tls(str(tls["certificate"]), str(tls["key"]))

    @property
    def backup_policy(self) -> dict[str, Any]:
        """The retention policy's fields the inventory sets (`backup`); the runner on the
        hosts defaults the others."""
        backup = self.doc.get("backup") or {}
        return {k: backup[k] for k in BACKUP_POLICY_FIELDS if k in backup}

    @property
    def backup_timezone(self) -> str:
        return str((self.doc.get("backup") or {}).get("timezone", "Europe/Paris"))

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

    def site(self, name: str) -> Site:
        for s in self.sites:
            if s.name == name:
                return s
        raise InventoryError(f"no site {name!r} in the inventory; sites: "
                             f"{', '.join(s.name for s in self.sites) or 'none'}")

    def sites_on(self, host: str) -> tuple[Site, ...]:
        """The sites a host serves (a web host's; none for any other)."""
        return tuple(s for s in self.sites if s.host == host)

    def secret(self, name: str) -> SecretRef | None:
        return self.secrets.get(name)

    @property
    def site_quota_gb(self) -> int | None:
        """Each site's space limit on each storage server (`storage.site_quota_gb`)."""
        value = (self.doc.get("storage") or {}).get("site_quota_gb")
        return int(value) if value is not None else None

    def storage_host(self, tier: str) -> Host:
        """The storage server of backup tier `a` (daily) or `b` (long-term)."""
        storage = self.doc["storage"]
        if tier not in storage:
            raise InventoryError(f"storage.{tier}: no such backup tier; tiers: "
                                 f"{', '.join(sorted(storage))}")
        return self.host(str(storage[tier]))

    @property
    def proxy(self) -> Host:
        """The one proxy host (the sites' public addresses, maintenance flags)."""
        proxies = self.by_role("proxy")
        if len(proxies) != 1:
            raise InventoryError(f"expected one proxy host in the inventory, found "
                                 f"{len(proxies)}")
        return proxies[0]

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
