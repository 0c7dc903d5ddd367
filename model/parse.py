"""Read `Pulumi.<env>.yaml` into a validated `Stack`, or raise `ConfigErrors` listing every problem.

Only the `hosting:` namespace is the model; other namespaces (`ovh:`, `openstack:`...) are provider
settings, possibly `secure:` secrets, kept aside and never needed to build the model. Three steps,
each reporting every problem it finds: the `hosting:` keys against model/config.schema.json
(model.schema), the typed `Stack` built from what passed, then the rules across fields
(model.rules), which skip values the schema refused (None) so every error comes in one run.
"""
from __future__ import annotations

from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import yaml

from model.errors import ConfigError, ConfigErrors, ErrorList
from model.rules import check_stack
from model.schema import Location, kind, load_schema, validate_config
from model.types import (
    Acme,
    AcmeCertificate,
    BackupPolicy,
    Codebase,
    Drupal,
    Email,
    Exposure,
    Flavors,
    Headers,
    Monitoring,
    Network,
    Ovh,
    Php,
    Site,
    Smoke,
    Ssh,
    Stack,
    Storage,
    Tls,
    UpdatePolicy,
)

NAMESPACE = "hosting"
# The other top-level keys Pulumi writes in a stack file.
FILE_KEYS = ("config", "encryptedkey", "encryptionsalt", "secretsprovider")


def load_stack(path: Path | str) -> Stack:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigErrors([ConfigError(str(path), "<file>",
                                        f"cannot read: {exc.strerror}")]) from None
    return parse_stack(text, str(path))


def parse_stack(text: str, file: str) -> Stack:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigErrors([ConfigError(file, "<yaml>", f"not valid YAML: {exc}")]) from None
    errors = ErrorList(file)
    config = _namespaced(errors, doc)
    if config is None:
        raise ConfigErrors(errors.errors)
    refused: set[Location] = set()
    for location, path, message in validate_config(config):
        refused.add(location)
        errors.error(path, message)
    stack = _build(_Values(config, refused), file)
    check_stack(errors, stack)
    if errors.errors:
        raise ConfigErrors(errors.errors)
    return stack


def _namespaced(errors: ErrorList, doc: Any) -> dict[str, Any] | None:
    """The `hosting:` keys of the file's `config:`, namespace removed."""
    if not isinstance(doc, dict):
        errors.error("<file>", f"must be a mapping with a 'config' key, got {kind(doc)}")
        return None
    for key in doc:
        if key not in FILE_KEYS:
            errors.error(str(key), f"unknown key (typo?); known keys: {', '.join(FILE_KEYS)}")
    if not isinstance(doc.get("config"), dict):
        errors.error("config", "must be a mapping of namespaced keys" if "config" in doc
                     else "missing (required)")
        return None
    ours: dict[str, Any] = {}
    for key, value in doc["config"].items():
        ns, sep, name = str(key).partition(":")
        if not sep:
            errors.error(str(key), f"config keys need a namespace, e.g. 'hosting:{key}'")
        elif ns == NAMESPACE:
            ours[name] = value
    return ours


class _Values:
    """The config's values by location, None where missing or refused by the schema (there or
    above), so the Stack holds only valid values and the rules skip the rest."""

    def __init__(self, config: dict[str, Any], refused: set[Location]):
        self.config, self.refused = config, refused

    def __call__(self, *location: str | int) -> Any:
        node: Any = self.config
        for depth, part in enumerate(location, 1):
            if location[:depth] in self.refused:
                return None
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    return None
            elif not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def count(self, *location: str | int) -> int:
        node = self(*location)
        return len(node) if isinstance(node, list) else 0

    def each(self, convert: Any, *location: str | int) -> tuple:
        return tuple(_maybe(convert, self(*location, i)) for i in range(self.count(*location)))


def _maybe(convert: Any, value: Any) -> Any:
    return None if value is None else convert(value)


def _build(v: _Values, file: str) -> Stack:
    def net(*loc: str | int) -> Any:
        return _maybe(ip_network, v(*loc))

    principals = v("ssh", "principals") or {}
    return Stack(
        file=file,
        environment=v("environment"),
        ovh=Ovh(*(v("ovh", k) for k in ("project_id", "vrack", "region", "backup_b_region",
                                        "dns_zone"))),
        network=Network(private_cidr=net("network", "private_cidr"),
                        vlan_id=v("network", "vlan_id"),
                        public_ip_blocks=v.each(ip_network, "network", "public_ip_blocks")),
        admin_networks=v.each(ip_network, "admin", "networks"),
        ssh=Ssh(login_user=v("ssh", "login_user"),
                user_ca_public_key=v("ssh", "user_ca_public_key"),
                host_ca_public_key=v("ssh", "host_ca_public_key"),
                user_cert_ttl_hours=v("ssh", "user_cert_ttl_hours"),
                principals=tuple((str(name), tuple(v("ssh", "principals", name) or ()))
                                 for name in principals)),
        backup=BackupPolicy(*(v("backup", k) for k in (
            "timezone", "weekly_day", "local_keep_days", "a_keep_days", "weekly_keep_days",
            "monthly_keep_days"))),
        flavors=Flavors(*(v("flavors", k) for k in ("proxy", "web", "ops", "storage"))),
        storage=Storage(v("storage", "backup_a_volume_gb"), v("storage", "backup_b_volume_gb"),
                        v("storage", "site_quota_gb")),
        tls=Tls(v("tls", "certificate"), v("tls", "key")),
        exposure=Exposure(indexable=v("exposure", "indexable")
                          if "exposure" in v.config else True,
                          allow=v.each(ip_network, "exposure", "allow")),
        sites=tuple(_site(v, i) for i in range(v.count("sites"))),
        monitoring=_monitoring(v),
        acme=_acme(v),
    )


def _acme(v: _Values) -> Acme | None:
    """The optional `acme:` section (issue 14), missing keys at their defaults."""
    if not isinstance(v.config.get("acme"), dict):
        return None
    given = {k: v("acme", k) for k in ("enabled", "directory", "email", "key_type",
                                       "elliptic_curve", "rsa_key_size", "ovh_endpoint",
                                       "propagation_seconds")}
    sets = tuple(AcmeCertificate(names=tuple(n for n in v.each(str, "acme", "certificates", i,
                                                               "names") if n is not None),
                                 name=v("acme", "certificates", i, "name") or "")
                 for i in range(v.count("acme", "certificates")))
    return Acme(**{k: x for k, x in given.items() if x is not None}, certificates=sets)


def _monitoring(v: _Values) -> Monitoring:
    """The `monitoring:` section, each missing (or refused) key at its schema default."""
    props = load_schema()["properties"]["monitoring"]["properties"]
    values = {}
    for key, spec in props.items():
        if key != "email":
            given = v("monitoring", key)
            values[key] = spec["default"] if given is None else given
    email = None
    if isinstance(v("monitoring", "email"), dict):
        email = Email(to=v.each(str, "monitoring", "email", "to"),
                      sender=v("monitoring", "email", "from") or "",
                      smarthost=v("monitoring", "email", "smarthost") or "",
                      username=v("monitoring", "email", "username") or "",
                      require_tls=v("monitoring", "email", "require_tls") is not False)
    return Monitoring(**values, email=email)


def _site(v: _Values, i: int) -> Site:
    def at(*loc: str) -> Any:
        return v("sites", i, *loc)
    return Site(
        name=at("name"),
        domain=at("domain"),
        aliases=v.each(str, "sites", i, "aliases"),
        public_ip=_maybe(ip_address, at("public_ip")),
        host_number=at("host_number"),
        php=Php(*(at("php", k) for k in ("version", "memory_limit_mb", "upload_max_mb",
                                         "max_execution_seconds"))),
        drupal=Drupal(at("drupal", "version"), at("drupal", "cron_every_minutes")),
        database=at("database", "name"),
        codebase=Codebase(at("codebase", "type") or "git", at("codebase", "url") or "",
                          at("codebase", "ref") or "", at("codebase", "sha256") or ""),
        backup_time=at("backup", "time"),
        headers=_headers(at),
        update=_update(v, i),
    )


def _update(v: _Values, i: int) -> UpdatePolicy:
    """A site's `update:`, each missing key at its default."""
    def at(*loc: Any) -> Any:
        return v("sites", i, "update", *loc)
    smoke = at("smoke")
    d = UpdatePolicy()
    return UpdatePolicy(
        smoke=d.smoke if smoke is None else tuple(
            Smoke(at("smoke", n, "path"), at("smoke", n, "marker") or "")
            for n in range(len(smoke))),
        sanitize=d.sanitize if at("sanitize") is None else v.each(str, "sites", i, "update",
                                                                  "sanitize"),
        sanitize_sql=v.each(str, "sites", i, "update", "sanitize_sql"),
        allowed_email_domain=at("allowed_email_domain") or d.allowed_email_domain,
        check_command=at("check_command") or "")


def _headers_schema() -> dict[str, Any]:
    return load_schema()["properties"]["sites"]["items"]["properties"]["headers"]["properties"]


def _headers(at: Any) -> Headers:
    """A site's `headers:`, each missing key at its schema default."""
    return Headers(**{key: at("headers", key) or spec["default"]
                      for key, spec in _headers_schema().items()})


def default_headers() -> Headers:
    """The policies of a site that sets none (an inventory written before they existed)."""
    return Headers(**{key: spec["default"] for key, spec in _headers_schema().items()})
