"""The typed, immutable model of one environment (a Pulumi stack): what exists and why.

Built only by `model.parse` (which validates); every other package reads these objects.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Literal

Role = Literal["proxy", "web", "ops", "storage"]
ROLES: tuple[Role, ...] = ("proxy", "web", "ops", "storage")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Ovh:
    project_id: str
    vrack: str
    region: str  # main region (R-GDPR-7)
    backup_b_region: str  # long-term tier in another French region (R-BKP-3)
    dns_zone: str


@dataclass(frozen=True)
class Network:
    private_cidr: IPv4Network
    vlan_id: int
    public_ip_blocks: tuple[IPv4Network, ...]


@dataclass(frozen=True)
class Ssh:
    login_user: str
    user_ca_public_key: str
    host_ca_public_key: str
    user_cert_ttl_hours: int
    principals: tuple[tuple[str, tuple[Role, ...]], ...]  # principal -> roles (R-INC-3)

    def principals_for(self, role: Role) -> tuple[str, ...]:
        return tuple(p for p, roles in self.principals if role in roles)


@dataclass(frozen=True)
class BackupPolicy:
    timezone: str
    weekly_day: str
    local_keep_days: int
    a_keep_days: int
    weekly_keep_days: int
    monthly_keep_days: int


@dataclass(frozen=True)
class Flavors:
    proxy: str
    web: str
    ops: str
    storage: str

    def for_role(self, role: Role) -> str:
        return str(getattr(self, role))


@dataclass(frozen=True)
class Storage:
    backup_a_volume_gb: int
    backup_b_volume_gb: int
    site_quota_gb: int | None = None  # None: 90 % of the smaller volume / number of sites

    def quota_gb(self, sites: int) -> int:
        """Each site's space limit on each storage server (backup.serve, R-GDPR-4)."""
        if self.site_quota_gb is not None:
            return self.site_quota_gb
        return max(1, int(0.9 * min(self.backup_a_volume_gb, self.backup_b_volume_gb))
                   // max(sites, 1))


@dataclass(frozen=True)
class Tls:
    certificate: str
    key: str


@dataclass(frozen=True)
class AcmeCertificate:
    """One certificate set of `acme.certificates`: one certbot lineage (issue 14)."""
    names: tuple[str, ...]
    name: str = ""  # the lineage (certbot's --cert-name); "": the first name without `*.`

    @property
    def lineage(self) -> str:
        return self.name or (self.names[0].removeprefix("*.") if self.names else "")


@dataclass(frozen=True)
class Acme:
    """The wildcard certificate by ACME DNS-01 on the OVH zone (issue 14, R-SCOPE-2; checked
    again, with the sites' names and the zone, by roles/acme/config.py; docs/tls.md)."""
    enabled: bool = False
    directory: str = "production"
    email: str = ""
    # Empty: one set, the wildcard and apex of the sites' zone (roles/acme derives it).
    certificates: tuple[AcmeCertificate, ...] = ()
    key_type: str = "ecdsa"
    elliptic_curve: str = "secp256r1"
    rsa_key_size: int = 2048
    ovh_endpoint: str = "ovh-eu"
    propagation_seconds: int = 120
    lab: bool = False  # inventory only, set by the lab: no random sleep on the timer's renewals


@dataclass(frozen=True)
class Exposure:
    indexable: bool
    allow: tuple[IPv4Network, ...] = ()


@dataclass(frozen=True)
class Email:
    """The alert email receiver; its SMTP password is a file on ops, never in the model."""

    to: tuple[str, ...]
    sender: str  # `from` in the stack file
    smarthost: str  # host:port
    username: str = ""
    require_tls: bool = True


@dataclass(frozen=True)
class Monitoring:
    """Prometheus, Alertmanager and the blackbox exporter on ops (R-HOST-4): the defaults are
    model/config.schema.json's `default`s, filled in by model.parse."""

    scrape_interval_seconds: int = 30
    retention_days: int = 30
    retention_size_gb: int = 20
    probe_path: str = "/"
    body_marker: str = "Drupal"
    site_down_after_seconds: int = 120
    site_slow_ms: int = 3000
    site_slow_after_seconds: int = 600
    cert_expiry_days: int = 21
    backup_stale_local_hours: int = 26
    backup_stale_a_hours: int = 26
    backup_stale_b_hours: int = 192
    disk_full_percent: int = 90
    host_down_after_seconds: int = 120
    alert_after_seconds: int = 300
    security_updates_pending_days: int = 3
    reboot_required_days: int = 7
    group_wait_seconds: int = 30
    group_interval_seconds: int = 300
    repeat_interval_hours: int = 4
    email: Email | None = None


@dataclass(frozen=True)
class Php:
    version: str
    memory_limit_mb: int
    upload_max_mb: int
    max_execution_seconds: int


@dataclass(frozen=True)
class Drupal:
    version: str
    cron_every_minutes: int


@dataclass(frozen=True)
class Codebase:
    type: Literal["git", "composer", "archive"]
    url: str
    ref: str = ""  # git ref or composer constraint; unused for archives
    sha256: str = ""  # archives: expected checksum


@dataclass(frozen=True)
class Smoke:
    path: str
    marker: str = ""


@dataclass(frozen=True)
class UpdatePolicy:
    """How `fab update` qualifies a site (issue 15, docs/updates.md); defaults are
    model/config.schema.json's, filled in by model.parse."""

    smoke: tuple[Smoke, ...] = (Smoke("/"),)
    sanitize: tuple[str, ...] = ("drupal",)
    sanitize_sql: tuple[str, ...] = ()
    allowed_email_domain: str = "example.invalid"
    check_command: str = ""


@dataclass(frozen=True)
class Headers:
    """The browser security policies the proxy sends for a site (issue 17); the defaults are
    model/config.schema.json's, filled in by model.parse."""

    content_security_policy: str
    permissions_policy: str


@dataclass(frozen=True)
class Site:
    name: str  # safe identifier: Unix user, DB user, paths, host name web-<name>
    domain: str
    aliases: tuple[str, ...]
    public_ip: IPv4Address
    # The web host's private address is network.private_cidr + host_number (.100 and up): an
    # explicit, stable number, so removing or reordering sites never renumbers another host.
    host_number: int
    php: Php
    drupal: Drupal
    database: str
    codebase: Codebase
    backup_time: str  # "HH:MM" local (backup.timezone)
    headers: Headers | None = None  # model.parse always fills it in
    update: UpdatePolicy | None = None  # model.parse always fills it in

    @property
    def host(self) -> str:
        return f"web-{self.name}"

    @property
    def names(self) -> tuple[str, ...]:
        return (self.domain, *self.aliases)


@dataclass(frozen=True)
class Stack:
    file: str
    environment: Literal["prod", "preprod"]
    ovh: Ovh
    network: Network
    admin_networks: tuple[IPv4Network, ...]
    ssh: Ssh
    backup: BackupPolicy
    flavors: Flavors
    storage: Storage
    tls: Tls
    exposure: Exposure
    sites: tuple[Site, ...]
    monitoring: Monitoring = Monitoring()
    acme: Acme | None = None  # `hosting:acme`, optional

    def site(self, name: str) -> Site:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(name)
