"""What the proxy serves, derived from the typed inventory. Pure: dataclasses in and out."""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.inventory import Inventory
from model.parse import default_headers
from model.types import Headers
from roles.web.site import Limits, web_site

# Per client IP, for requests that reach PHP (static assets are not counted). A page view is
# one dynamic request plus assets; 10 r/s sustained with a burst of 40 leaves people and
# crawlers room while a single flooding client gets 429s instead of exhausting PHP workers.
RATE_PER_SECOND = 10
RATE_BURST = 40
MAINTENANCE_DIR = "/var/lib/hosting/maintenance"  # <site> file present = maintenance mode
MAINTENANCE_ROOT = "/var/www/hosting-maintenance"
ACME_ROOT = "/var/www/acme"  # HTTP-01 webroot, kept reachable over plain HTTP


@dataclass(frozen=True)
class ProxySite:
    name: str
    names: tuple[str, ...]
    public_ip: str
    backend: str  # web host's private address (vRack)
    limits: Limits
    allow: tuple[str, ...]  # empty: everybody (indexable stack)
    noindex: bool
    headers: Headers = field(default_factory=default_headers)  # CSP, Permissions-Policy
    # With ACME on (issue 14): the pair of the certificate set covering the site's names
    # (roles/acme/config.site_certificates); "": the http-level (uploaded or lab) pair.
    certificate: str = ""
    key: str = ""

    @property
    def maintenance_flag(self) -> str:
        return f"{MAINTENANCE_DIR}/{self.name}"


@dataclass(frozen=True)
class ProxyConfig:
    environment: str
    sites: tuple[ProxySite, ...]
    certificate: str
    key: str
    unlimited: tuple[str, ...]  # not rate-limited: admin networks and the proxy itself
    rate_per_second: int = RATE_PER_SECOND
    rate_burst: int = RATE_BURST


def proxy_config(inventory: Inventory, proxy_host: str = "proxy") -> ProxyConfig:
    host = inventory.host(proxy_host)
    indexable = inventory.indexable
    allow = () if indexable else inventory.exposure_allow
    if not indexable and not allow:
        # The model refuses this too; refusing here keeps a hand-made inventory from
        # publishing a preprod to everybody.
        raise ValueError("a non-indexable environment needs exposure_allow")
    sites = []
    for s in inventory.sites:
        w = web_site(inventory, s.name)
        if s.public_ip not in host.site_ips:
            raise ValueError(f"site {s.name}: public IP {s.public_ip} is not routed to "
                             f"{proxy_host} (site_ips {list(host.site_ips)})")
        sites.append(ProxySite(w.name, w.names, s.public_ip, w.private_ip, w.limits,
                               allow, noindex=not indexable, headers=s.headers))
    own = [f"{ip}/32" for ip in (host.public_ip, *host.site_ips) if ip]
    tls = inventory.tls
    if tls is None:
        raise ValueError("inventory names no tls.certificate / tls.key for the proxy")
    return ProxyConfig(
        environment=inventory.environment, sites=tuple(sites),
        certificate=tls.certificate, key=tls.key,
        unlimited=tuple(dict.fromkeys([*inventory.admin_networks, *own, "127.0.0.1/32"])),
    )
