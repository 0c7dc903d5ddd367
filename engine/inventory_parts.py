"""The inventory's parts, typed: hosts, sites (with their update policy) and secret
references, and the ACME section. engine/inventory.py builds the Inventory from them; every
name here is re-exported there, so callers import from engine.inventory."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from model.parse import default_headers
from model.types import (
    Acme,
    AcmeCertificate,
    Codebase,
    Drupal,
    Headers,
    Php,
    Smoke,
    UpdatePolicy,
)


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


SECRET_SCHEMES = ("host-file", "file", "pulumi-output")


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives, never its value (`secrets.<name>.ref` in the inventory):
    `host-file:<host>:<path>` a file generated and kept on that host (the sites' database
    credentials: R-GDPR-1, they never leave the web host), `file:<path>` a file on the
    admin's machine, `pulumi-output:<name>` a secret output of the stack (no host, the name
    in `path`)."""
    host: str  # "" unless scheme is host-file
    path: str
    scheme: str = "host-file"

    @classmethod
    def parse(cls, ref: str, field_name: str) -> SecretRef:
        """The reference `ref`, or InventoryError naming `field_name` and the expected form."""
        scheme, sep, rest = str(ref).partition(":")
        if not sep or scheme not in SECRET_SCHEMES:
            raise InventoryError(f"{field_name}: {ref!r} is no secret reference; expected "
                                 "host-file:<host>:<path>, file:<path> or pulumi-output:<name>")
        if scheme == "host-file":
            host, sep, path = rest.partition(":")
            if not host or not sep or not path.startswith("/"):
                raise InventoryError(f"{field_name}: {ref!r} is not host-file:<host>:<path> "
                                     "(a host name, then an absolute path on it)")
            return cls(host, path)
        if scheme == "file" and not rest.startswith("/"):
            raise InventoryError(f"{field_name}: {ref!r} is not file:<path> (an absolute path)")
        if not rest:
            raise InventoryError(f"{field_name}: {ref!r} names nothing after {scheme}:")
        return cls("", rest, scheme)

    def __str__(self) -> str:
        if self.scheme == "host-file":
            return f"host-file:{self.host}:{self.path}"
        return f"{self.scheme}:{self.path}"


@dataclass(frozen=True)
class Site:
    """One site of the inventory (`sites[i]`), typed once; the roles and tasks derive their
    own views from it (roles.web.site.WebSite, roles.proxy.config.ProxySite)."""
    name: str
    domain: str
    aliases: tuple[str, ...]
    host: str  # the web host serving it (one site per web VM, R-HOST-2)
    public_ip: str  # routed to the proxy
    database: str
    php: Php
    drupal: Drupal
    codebase: Codebase
    backup_time: str  # "HH:MM", local time of the backup policy's timezone
    db_password: SecretRef | None = None  # `secrets.db_password_<name>`: where it lives
    # The browser security policies; an inventory written before them gets the model's.
    headers: Headers = field(default_factory=default_headers)
    # How `fab update` qualifies it (issue 15); an inventory written before gets the defaults.
    update: UpdatePolicy = field(default_factory=UpdatePolicy)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.domain, *self.aliases)


def _typed(cls: Any, data: Any, where: str, **extra: Any) -> Any:
    """`cls(**data)` for a model.types dataclass, with an InventoryError naming the field
    (`sites[1].php.memory_limit_mb`) when one is missing or not a number."""
    if not isinstance(data, Mapping):
        raise InventoryError(f"{where}: expected an object, got {data!r}")
    values: dict[str, Any] = dict(extra)
    for f in fields(cls):
        if f.name in values:
            continue
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:  # required
                raise InventoryError(f"{where}.{f.name}: missing")
            continue
        value = data[f.name]
        if f.type == "int":
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise InventoryError(f"{where}.{f.name}: {value!r} is not a number") from None
        elif f.type == "str":
            value = "" if value is None else str(value)
        values[f.name] = value
    return cls(**values)


def site_from_doc(s: Mapping[str, Any], i: int, secrets: Mapping[str, SecretRef]) -> Site:
    where = f"sites[{i}]"
    codebase = s["codebase"]
    key = f"db_password_{s['name']}"
    password = secrets.get(key)
    if password is not None and password.scheme == "host-file" and password.host != s["host"]:
        # The web host reads its own credentials file: a reference to another host is a typo.
        raise InventoryError(f"secrets.{key}.ref: the file is on {password.host}, but site "
                             f"{s['name']} lives on {s['host']}")
    # The codebase's type is checked (with its field named) where it is used:
    # tasks.web_codebase.build; here it only has to be an object.
    return Site(
        name=s["name"], domain=s["domain"], aliases=tuple(s["aliases"]), host=s["host"],
        public_ip=s["public_ip"], database=s["database"],
        php=_typed(Php, s["php"], f"{where}.php"),
        drupal=_typed(Drupal, s["drupal"], f"{where}.drupal"),
        codebase=_typed(Codebase, codebase, f"{where}.codebase",
                        type=str(codebase.get("type", "")) if isinstance(codebase, Mapping)
                        else ""),
        backup_time=s["backup_time"], db_password=password,
        headers=_typed(Headers, s["headers"], f"{where}.headers") if "headers" in s
        else default_headers(),
        update=_update_policy(s["update"], f"{where}.update") if "update" in s
        else UpdatePolicy())


def _update_policy(u: Any, where: str) -> UpdatePolicy:
    if not isinstance(u, Mapping):
        raise InventoryError(f"{where}: expected an object, got {u!r}")
    try:
        return UpdatePolicy(
            smoke=tuple(Smoke(str(m["path"]), str(m.get("marker", ""))) for m in u["smoke"]),
            sanitize=tuple(map(str, u["sanitize"])),
            sanitize_sql=tuple(map(str, u["sanitize_sql"])),
            allowed_email_domain=str(u["allowed_email_domain"]),
            check_command=str(u["check_command"]))
    except (KeyError, TypeError) as exc:
        raise InventoryError(f"{where}: {exc!r} missing or malformed") from None


_ACME_TYPES = {"enabled": bool, "directory": str, "email": str, "certificates": list,
               "key_type": str, "elliptic_curve": str, "rsa_key_size": int,
               "ovh_endpoint": str, "propagation_seconds": int, "lab": bool}


def acme_settings(doc: Any) -> Acme | None:
    """The inventory's optional `acme` section typed (model.types.Acme), or None when absent;
    an InventoryError naming the field (`acme.certificates[1].names[0]`) for a wrong type or
    an unknown key. What the values mean (names in the zone, curves...) roles/acme checks."""
    if doc is None:
        return None
    if not isinstance(doc, Mapping):
        raise InventoryError(f"acme: expected an object, got {doc!r}")
    values: dict[str, Any] = {}
    for key, value in doc.items():
        kind = _ACME_TYPES.get(key)
        if kind is None:
            raise InventoryError(f"acme.{key}: unknown key; known: {', '.join(_ACME_TYPES)}")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise InventoryError(f"acme.{key}: expected {kind.__name__}, got {value!r}")
        values[key] = value
    sets = []
    for i, item in enumerate(values.pop("certificates", [])):
        where = f"acme.certificates[{i}]"
        if not isinstance(item, Mapping):
            raise InventoryError(f"{where}: expected an object, got {item!r}")
        unknown = sorted(set(item) - {"name", "names"})
        if unknown:
            raise InventoryError(f"{where}.{unknown[0]}: unknown key; known: name, names")
        names = item.get("names")
        if not isinstance(names, list) or not names:
            raise InventoryError(f"{where}.names: expected a non-empty list, got {names!r}")
        for j, n in enumerate(names):
            if not isinstance(n, str):
                raise InventoryError(f"{where}.names[{j}]: expected str, got {n!r}")
        name = item.get("name", "")
        if not isinstance(name, str):
            raise InventoryError(f"{where}.name: expected str, got {name!r}")
        sets.append(AcmeCertificate(tuple(names), name))
    return Acme(**values, certificates=tuple(sets))
