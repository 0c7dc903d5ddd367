"""Read `Pulumi.<env>.yaml` into a validated `Stack`, or raise `ConfigErrors` listing every problem.

Only the `hosting:` namespace is the model; other namespaces (`ovh:`, `openstack:`...) are provider
settings, possibly `secure:` secrets, kept aside and never needed to build the model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from model import fields as F
from model.errors import ConfigError, ConfigErrors
from model.reader import MISSING, Reader
from model.rules import check_stack
from model.types import (
    ROLES,
    WEEKDAYS,
    BackupPolicy,
    Codebase,
    Drupal,
    Exposure,
    Flavors,
    Network,
    Ovh,
    Php,
    Site,
    Ssh,
    Stack,
    Storage,
    Tls,
)

NAMESPACE = "hosting"
SECTIONS = {"environment", "ovh", "network", "admin", "ssh", "backup", "flavors", "storage",
            "tls", "exposure", "sites"}


def load_stack(path: Path | str) -> Stack:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigErrors([ConfigError(str(path), "<file>",
                                        f"cannot read: {exc.strerror}")]) from None
    return parse_stack(text, str(path))


def parse_stack(text: str, file: str) -> Stack:
    r = Reader(file)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigErrors([ConfigError(file, "<yaml>", f"not valid YAML: {exc}")]) from None
    config = _namespaced(r, doc)
    stack = _build(r, config, file) if config is not None else None
    if stack is not None:
        check_stack(r, stack)
    if r.errors or stack is None:
        raise ConfigErrors(r.errors)
    return stack


def _namespaced(r: Reader, doc: Any) -> dict[str, Any] | None:
    top = r.mapping(doc, "", {"config"}, {"secretsprovider", "encryptedkey", "encryptionsalt"})
    if top is None or not isinstance(top.get("config"), dict):
        if top is not None and "config" in top:
            r.error("config", "must be a mapping of namespaced keys")
        return None
    ours: dict[str, Any] = {}
    for key, value in top["config"].items():
        ns, sep, name = str(key).partition(":")
        if not sep:
            r.error(str(key), "config keys need a namespace, e.g. 'hosting:" + str(key) + "'")
        elif ns == NAMESPACE:
            if name in SECTIONS:
                ours[name] = value
            else:
                r.error(str(key), f"unknown key (typo?); known: {', '.join(sorted(SECTIONS))}")
    for name in sorted(SECTIONS - set(ours)):
        if name not in ("exposure",):
            r.error(name, f"missing (required key 'hosting:{name}')")
    return ours


def _build(r: Reader, c: dict[str, Any], file: str) -> Stack | None:
    env = r.choice(c.get("environment", MISSING), "environment", F.ENVIRONMENTS, "environment")
    name_env = Path(file).name.split(".")[1] if Path(file).name.count(".") == 2 else None
    if env and name_env in F.ENVIRONMENTS and name_env != env:
        r.error("environment", f"{env!r} does not match the stack file name ({name_env})")
    sites_raw = r.listing(c.get("sites", []), "sites") or []
    stack = Stack(
        file=file,
        environment=env,  # type: ignore[arg-type]
        ovh=_ovh(r, c.get("ovh", {})),
        network=_network(r, c.get("network", {})),
        admin_networks=_admin(r, c.get("admin", {})),
        ssh=_ssh(r, c.get("ssh", {})),
        backup=_backup(r, c.get("backup", {})),
        flavors=_flavors(r, c.get("flavors", {})),
        storage=_storage(r, c.get("storage", {})),
        tls=_tls(r, c.get("tls", {})),
        exposure=_exposure(r, c.get("exposure", {"indexable": True})),
        sites=tuple(_site(r, s, f"sites[{i}]") for i, s in enumerate(sites_raw)),
    )
    if not sites_raw and "sites" in c:
        r.error("sites", "must list at least one site (R-SCOPE-1)")
    return stack


def _ovh(r: Reader, v: Any) -> Ovh:
    m = r.mapping(v, "ovh", {"project_id", "vrack", "region", "backup_b_region", "dns_zone"}) or {}
    region_msg = "is not an OVHcloud region in France (R-GDPR-7): GRA*, SBG*, RBX*, EU-WEST-PAR"
    return Ovh(
        project_id=r.string(m.get("project_id", MISSING), "ovh.project_id", F.PROJECT_ID,
                            "is not an OVH Public Cloud project id (32 hex digits)"),  # type: ignore[arg-type]
        vrack=r.string(m.get("vrack", MISSING), "ovh.vrack", F.VRACK,
                       "is not a vRack service name (pn-<digits>)"),  # type: ignore[arg-type]
        region=r.string(m.get("region", MISSING), "ovh.region", F.FRENCH_REGION,
                        region_msg),  # type: ignore[arg-type]
        backup_b_region=r.string(m.get("backup_b_region", MISSING), "ovh.backup_b_region",
                                 F.FRENCH_REGION, region_msg),  # type: ignore[arg-type]
        dns_zone=_domain(r, m.get("dns_zone", MISSING), "ovh.dns_zone"),  # type: ignore[arg-type]
    )


def _network(r: Reader, v: Any) -> Network:
    m = r.mapping(v, "network", {"private_cidr", "vlan_id", "public_ip_blocks"}) or {}
    blocks = r.listing(m.get("public_ip_blocks", []), "network.public_ip_blocks") or []
    return Network(
        private_cidr=r.network(m.get("private_cidr", MISSING), "network.private_cidr"),  # type: ignore[arg-type]
        vlan_id=r.integer(m.get("vlan_id", MISSING), "network.vlan_id", 0, 4000,
                          "OVH vRack VLAN ids"),  # type: ignore[arg-type]
        public_ip_blocks=tuple(r.network(b, f"network.public_ip_blocks[{i}]")  # type: ignore[misc]
                               for i, b in enumerate(blocks)),
    )


def _admin(r: Reader, v: Any) -> tuple:
    m = r.mapping(v, "admin", {"networks"}) or {}
    nets = r.listing(m.get("networks", []), "admin.networks") or []
    if "networks" in m and not nets:
        r.error("admin.networks", "must list at least one admin network (or nobody can log in)")
    return tuple(r.network(n, f"admin.networks[{i}]", v4_only=False) for i, n in enumerate(nets))


def _ssh(r: Reader, v: Any) -> Ssh:
    keys = {"login_user", "user_ca_public_key", "host_ca_public_key", "user_cert_ttl_hours",
            "principals"}
    m = r.mapping(v, "ssh", keys) or {}
    cas = {}
    for key in ("user_ca_public_key", "host_ca_public_key"):
        text = r.string(m.get(key, MISSING), f"ssh.{key}")
        problem = F.ssh_public_key_problem(text) if text else None
        if problem:
            r.error(f"ssh.{key}", problem)
        cas[key] = text
    principals: list[tuple[str, tuple]] = []
    pm = m.get("principals", MISSING)
    names = set(pm) if isinstance(pm, dict) else set()
    if pm is not MISSING and r.mapping(pm, "ssh.principals", set(), names) is not None:
        for name, roles in pm.items():
            path = f"ssh.principals.{name}"
            r.string(str(name), path, F.PRINCIPAL, "is not a valid principal name")
            for i, role in enumerate(r.listing(roles, path) or []):
                r.choice(role, f"{path}[{i}]", ROLES, "role")
            principals.append((str(name), tuple(roles) if isinstance(roles, list) else ()))
    login = r.string(m.get("login_user", MISSING), "ssh.login_user", F.LOGIN_USER,
                     "is not a valid Unix user name")
    if login == "root":
        r.error("ssh.login_user", "must not be root (PermitRootLogin no; use sudo)")
    return Ssh(
        login_user=login,  # type: ignore[arg-type]
        user_ca_public_key=cas["user_ca_public_key"],  # type: ignore[arg-type]
        host_ca_public_key=cas["host_ca_public_key"],  # type: ignore[arg-type]
        user_cert_ttl_hours=r.integer(m.get("user_cert_ttl_hours", MISSING),
                                      "ssh.user_cert_ttl_hours", 1, 24,
                                      "user certificates are short-lived"),  # type: ignore[arg-type]
        principals=tuple(principals),
    )


def _backup(r: Reader, v: Any) -> BackupPolicy:
    keys = {"timezone", "weekly_day", "local_keep_days", "a_keep_days", "weekly_keep_days",
            "monthly_keep_days"}
    m = r.mapping(v, "backup", keys) or {}
    tz = r.string(m.get("timezone", MISSING), "backup.timezone")
    if tz:
        try:
            from zoneinfo import ZoneInfo
            ZoneInfo(tz)
        except (ValueError, KeyError, OSError):
            r.error("backup.timezone", f"{tz!r} is not a known time zone")
    year = "nothing may be kept longer than one year (R-GDPR-3, R-BKP-6)"

    def days(key: str, high: int, why: str) -> int | None:
        return r.integer(m.get(key, MISSING), f"backup.{key}", 1, high, why)
    return BackupPolicy(
        timezone=tz,  # type: ignore[arg-type]
        weekly_day=r.choice(m.get("weekly_day", MISSING), "backup.weekly_day", WEEKDAYS,
                            "weekday"),  # type: ignore[arg-type]
        local_keep_days=days("local_keep_days", 365, year),  # type: ignore[arg-type]
        a_keep_days=days("a_keep_days", 365, year),  # type: ignore[arg-type]
        weekly_keep_days=days("weekly_keep_days", 35,
                              "weekly backups older than 5 weeks are deleted (R-BKP-4)"),  # type: ignore[arg-type]
        monthly_keep_days=days("monthly_keep_days", 365, year),  # type: ignore[arg-type]
    )


def _flavors(r: Reader, v: Any) -> Flavors:
    m = r.mapping(v, "flavors", set(ROLES)) or {}
    got = {role: r.string(m.get(role, MISSING), f"flavors.{role}", F.FLAVOR,
                          "is not an OVH flavor name") for role in ROLES}
    return Flavors(**got)  # type: ignore[arg-type]


def _storage(r: Reader, v: Any) -> Storage:
    m = r.mapping(v, "storage", {"backup_a_volume_gb", "backup_b_volume_gb"}) or {}
    return Storage(*(r.integer(m.get(k, MISSING), f"storage.{k}", 10, 100_000)  # type: ignore[arg-type]
                     for k in ("backup_a_volume_gb", "backup_b_volume_gb")))


def _tls(r: Reader, v: Any) -> Tls:
    m = r.mapping(v, "tls", {"certificate", "key"}) or {}
    return Tls(*(r.string(m.get(k, MISSING), f"tls.{k}", r"/[A-Za-z0-9._/-]+",  # type: ignore[arg-type]
                          "must be an absolute path") for k in ("certificate", "key")))


def _exposure(r: Reader, v: Any) -> Exposure:
    m = r.mapping(v, "exposure", {"indexable"}, {"allow"}) or {}
    allow = r.listing(m.get("allow", []), "exposure.allow") or []
    return Exposure(
        indexable=r.boolean(m.get("indexable", MISSING), "exposure.indexable"),  # type: ignore[arg-type]
        allow=tuple(r.network(a, f"exposure.allow[{i}]", v4_only=False)  # type: ignore[misc]
                    for i, a in enumerate(allow)),
    )


def _site(r: Reader, v: Any, p: str) -> Site:
    keys = {"name", "domain", "public_ip", "php", "drupal", "database", "codebase", "backup"}
    m = r.mapping(v, p, keys, {"aliases", "host_number"}) or {}
    aliases = r.listing(m.get("aliases", []), f"{p}.aliases") or []
    php = r.mapping(m.get("php", {}), f"{p}.php",
                    {"version", "memory_limit_mb", "upload_max_mb", "max_execution_seconds"}) or {}
    drupal = r.mapping(m.get("drupal", {}), f"{p}.drupal", {"version", "cron_every_minutes"}) or {}
    db = r.mapping(m.get("database", {}), f"{p}.database", {"name"}) or {}
    backup = r.mapping(m.get("backup", {}), f"{p}.backup", {"time"}) or {}
    return Site(
        name=r.string(m.get("name", MISSING), f"{p}.name", F.IDENTIFIER,
                      F.IDENTIFIER_EXPLAIN),  # type: ignore[arg-type]
        domain=_domain(r, m.get("domain", MISSING), f"{p}.domain"),  # type: ignore[arg-type]
        aliases=tuple(_domain(r, a, f"{p}.aliases[{i}]") for i, a in enumerate(aliases)),  # type: ignore[misc]
        public_ip=r.ipv4(m.get("public_ip", MISSING), f"{p}.public_ip"),  # type: ignore[arg-type]
        host_number=_host_number(r, v, f"{p}.host_number"),  # type: ignore[arg-type]
        php=Php(
            version=r.choice(php.get("version", MISSING), f"{p}.php.version", F.PHP_VERSIONS,
                             "PHP version"),  # type: ignore[arg-type]
            memory_limit_mb=r.integer(php.get("memory_limit_mb", MISSING),
                                      f"{p}.php.memory_limit_mb", 64, 4096),  # type: ignore[arg-type]
            upload_max_mb=r.integer(php.get("upload_max_mb", MISSING),
                                    f"{p}.php.upload_max_mb", 1, 2048),  # type: ignore[arg-type]
            max_execution_seconds=r.integer(php.get("max_execution_seconds", MISSING),
                                            f"{p}.php.max_execution_seconds", 1, 3600),  # type: ignore[arg-type]
        ),
        drupal=Drupal(
            version=r.choice(drupal.get("version", MISSING), f"{p}.drupal.version",
                             F.DRUPAL_VERSIONS, "Drupal version"),  # type: ignore[arg-type]
            cron_every_minutes=r.integer(drupal.get("cron_every_minutes", MISSING),
                                         f"{p}.drupal.cron_every_minutes", 1, 1440),  # type: ignore[arg-type]
        ),
        database=r.string(db.get("name", MISSING), f"{p}.database.name", F.IDENTIFIER,
                          F.IDENTIFIER_EXPLAIN),  # type: ignore[arg-type]
        codebase=_codebase(r, m.get("codebase", MISSING), f"{p}.codebase"),
        backup_time=r.string(backup.get("time", MISSING), f"{p}.backup.time", F.HHMM,
                             "is not a time of day HH:MM"),  # type: ignore[arg-type]
    )


def _host_number(r: Reader, site: Any, path: str) -> int | None:
    """Required, never derived from the site's position (model.topology): a default by position
    is exactly what renumbers every later host when a site is removed. Its range depends on
    network.private_cidr, so model.rules checks it; here only that it is an integer."""
    if not isinstance(site, dict):
        return None  # already reported by the site's mapping
    if "host_number" not in site:
        r.error(path, "missing (required): the web host's fixed private address, "
                "network.private_cidr + host_number, unique, from 100; stack files written "
                "before this key existed used 100, 101... in the order of the sites")
        return None
    return r.integer(site["host_number"], path, 0, 2**32 - 1)


def _codebase(r: Reader, v: Any, p: str) -> Codebase:
    if v is MISSING:
        return Codebase("git", "")  # the missing key is already reported by the site mapping
    m = r.mapping(v, p, {"type", "url"}, {"ref", "sha256"}) or {}
    kind = r.choice(m.get("type", MISSING), f"{p}.type", F.CODEBASE_TYPES, "codebase type")
    url = r.string(m.get("url", MISSING), f"{p}.url", r"(https://|ssh://|git@)[^\s'\"`$;|&<>]+",
                   "must be an https://, ssh:// or git@ URL without shell metacharacters")
    ref = r.string(m.get("ref", MISSING), f"{p}.ref", r"[A-Za-z0-9._/^~<>=*|, -]{1,100}",
                   "is not a valid git ref or composer constraint") if "ref" in m else ""
    sha = r.string(m.get("sha256", MISSING), f"{p}.sha256", F.SHA256,
                   "must be 64 lowercase hex digits") if "sha256" in m else ""
    if kind == "archive" and "sha256" not in m:
        r.error(f"{p}.sha256", "missing: a release archive must be pinned by its SHA-256")
    if kind in ("git", "composer") and "ref" not in m:
        r.error(f"{p}.ref", f"missing: a {kind} codebase needs a ref (branch, tag or constraint)")
    return Codebase(kind or "git", url or "", ref or "", sha or "")  # type: ignore[arg-type]


def _domain(r: Reader, v: Any, path: str) -> str | None:
    text = r.string(v, path)
    if text is None:
        return None
    problem = F.domain_problem(text)
    if problem:
        r.error(path, f"{text!r} {problem}")
        return None
    return text
