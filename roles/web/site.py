"""One site as its web host serves it: the inventory's facts, plus the limits derived from
them. Pure: built from the typed inventory (engine.inventory.Site), no I/O."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from engine.inventory import Inventory, Site
from roles.web.layout import SiteLayout


@dataclass(frozen=True)
class Limits:
    """Every size and time limit of one site, derived from its three model numbers so that
    they agree with each other (the issue's "coherent limits"): each outer layer waits a little
    longer than the one inside it, so the innermost one (PHP) fails first, with its own error.
    """
    memory_mb: int
    upload_mb: int  # biggest request body, whole: PHP post_max_size = upload_max_filesize = it
    execution_s: int

    @property
    def fpm_terminate_s(self) -> int:
        # max_execution_time counts CPU time only on Linux; this is the wall-clock cap.
        return self.execution_s + 10

    @property
    def fastcgi_read_s(self) -> int:
        return self.fpm_terminate_s + 5

    @property
    def proxy_read_s(self) -> int:
        return self.fastcgi_read_s + 5

    @property
    def body_timeout_s(self) -> int:
        return 60


@dataclass(frozen=True)
class WebSite:
    name: str
    domain: str
    aliases: tuple[str, ...]
    host: str
    private_ip: str  # the web host's vRack address: nginx listens there only (R-HOST-1)
    proxy_ip: str  # the only address trusted for X-Forwarded-* (real client IP)
    admin_networks: tuple[str, ...]  # update.php is reachable from these only
    database: str
    limits: Limits
    cron_every_minutes: int
    codebase: Mapping[str, str]
    db_credentials: str  # where the credentials live on the host (inventory secret ref)
    environment: str

    @property
    def names(self) -> tuple[str, ...]:
        return (self.domain, *self.aliases)

    @property
    def layout(self) -> SiteLayout:
        return SiteLayout(self.name)


def db_credentials(site: Site) -> str:
    """The site's database credentials file on its web host: the inventory's reference
    (`secrets.db_password_<site>`, a `host-file:<host>:<path>` kept on the web host itself),
    or where the web role puts it when the inventory names none."""
    ref = site.db_password
    if ref is not None and ref.scheme == "host-file":
        return ref.path
    return SiteLayout(site.name).db_credentials


def web_site(inventory: Inventory, name: str) -> WebSite:
    """Site `name` as its web host serves it (InventoryError naming the known sites when
    there is no such site)."""
    s = inventory.site(name)
    return WebSite(
        name=s.name, domain=s.domain, aliases=s.aliases, host=s.host,
        private_ip=inventory.host(s.host).private_ip,
        proxy_ip=inventory.proxy.private_ip,
        admin_networks=inventory.admin_networks,
        database=s.database,
        limits=Limits(s.php.memory_limit_mb, s.php.upload_max_mb, s.php.max_execution_seconds),
        cron_every_minutes=s.drupal.cron_every_minutes,
        codebase=dataclasses.asdict(s.codebase),
        db_credentials=db_credentials(s),
        environment=inventory.environment,
    )


def sites_on_host(inventory: Inventory, host: str) -> tuple[WebSite, ...]:
    return tuple(web_site(inventory, s.name) for s in inventory.sites_on(host))
