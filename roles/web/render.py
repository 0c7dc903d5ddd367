"""Every configuration file of a web host, rendered from templates/web and templates/mariadb.
Pure: (sites, versions) -> text."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.render import render
from roles.web.layout import MYSQL_SOCKET, PHP_VERSION
from roles.web.limits import pool_size, timer_schedule
from roles.web.site import WebSite

NGINX_LOG_DIR = "/var/log/nginx"
NGINX_PID = "/run/nginx.pid"
# The proxy -> web hop (issue 19 item 6): HTTPS on the web host's private address, the proxy's
# client certificate required. Its files, on both ends, live here (engine/tls_ca.py issues
# them on the admin's machine; the roles install what Settings.internal_tls carries).
INTERNAL_DIR = "/etc/nginx/internal-tls"
INTERNAL_PORT = 443


@dataclass(frozen=True)
class InternalFiles:
    """The web host's side: its server certificate and key, and the CA its clients must
    have a certificate from."""
    ca: str = f"{INTERNAL_DIR}/ca.pem"
    cert: str = f"{INTERNAL_DIR}/server.pem"
    key: str = f"{INTERNAL_DIR}/server.key"
    port: int = INTERNAL_PORT


def nginx_conf(site: WebSite, log_dir: str = NGINX_LOG_DIR, pid_file: str = NGINX_PID,
               internal: InternalFiles | None = None) -> str:
    return render("web/nginx.conf.j2", site=site, log_dir=log_dir, pid_file=pid_file,
                  internal=internal or InternalFiles())


def php_pool(site: WebSite, memory_mb: int = 0, sites_on_host: int = 1) -> str:
    """The site's pool, sized from the host's memory (SystemFacts.memory_mb; 0 = unknown)."""
    return render("web/php-pool.conf.j2", site=site,
                  pool=pool_size(site.limits, memory_mb, sites_on_host))


def php_ini() -> str:
    return render("web/php-hosting.ini.j2", php_version=PHP_VERSION)


def settings_local(site: WebSite) -> str:
    return render("web/settings.local.php.j2", site=site, mysql_socket=MYSQL_SOCKET)


def default_settings(site: WebSite) -> str:
    return render("web/settings.php.j2", site=site)


def cron_service(site: WebSite) -> str:
    # A cron run may take a while (search indexing...), never longer than its own period.
    timeout = max(60, site.cron_every_minutes * 60 - 30)
    return render("web/cron.service.j2", site=site, php_version=PHP_VERSION,
                  cron_timeout_s=timeout)


def cron_timer(site: WebSite) -> str:
    return render("web/cron.timer.j2", site=site, schedule=timer_schedule(site.cron_every_minutes))


def private_service(site: WebSite) -> str:
    return render("web/private.service.j2", site=site, php_version=PHP_VERSION)


def php_fpm_dropin(sites: Sequence[WebSite]) -> str:
    return render("web/php-fpm-dropin.conf.j2", sites=sites)
