"""One site as its web host serves it: the inventory's facts, plus the limits derived from
them. Pure: built from the inventory document (a plain dict), no I/O."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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


def _host(inventory: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    for h in inventory["hosts"]:
        if h["name"] == name:
            return h
    raise KeyError(f"inventory has no host {name!r}")


def _proxy_ip(inventory: Mapping[str, Any]) -> str:
    proxies = [h for h in inventory["hosts"] if h["role"] == "proxy"]
    if len(proxies) != 1:
        raise ValueError(f"expected one proxy host in the inventory, found {len(proxies)}")
    return str(proxies[0]["private_ip"])


def _credentials_path(inventory: Mapping[str, Any], site: str, default: str) -> str:
    ref = inventory.get("secrets", {}).get(f"db_password_{site}", {}).get("ref", "")
    # "host-file:<host>:<path>": the secret is generated and kept on the web host itself.
    if ref.startswith("host-file:"):
        return ref.split(":", 2)[2]
    return default


def web_site(inventory: Mapping[str, Any], name: str) -> WebSite:
    for s in inventory["sites"]:
        if s["name"] == name:
            break
    else:
        raise KeyError(f"inventory has no site {name!r}")
    php = s["php"]
    return WebSite(
        name=s["name"], domain=s["domain"], aliases=tuple(s["aliases"]), host=s["host"],
        private_ip=str(_host(inventory, s["host"])["private_ip"]),
        proxy_ip=_proxy_ip(inventory),
        admin_networks=tuple(inventory.get("admin_networks", ())),
        database=s["database"],
        limits=Limits(int(php["memory_limit_mb"]), int(php["upload_max_mb"]),
                      int(php["max_execution_seconds"])),
        cron_every_minutes=int(s["drupal"]["cron_every_minutes"]),
        codebase=dict(s["codebase"]),
        db_credentials=_credentials_path(inventory, name, SiteLayout(name).db_credentials),
        environment=inventory["environment"],
    )


def sites_on_host(inventory: Mapping[str, Any], host: str) -> tuple[WebSite, ...]:
    return tuple(web_site(inventory, s["name"]) for s in inventory["sites"] if s["host"] == host)
