"""The proxy's configuration files, rendered from templates/proxy. Pure."""
from __future__ import annotations

from engine.render import render
from roles.proxy.config import ACME_ROOT, MAINTENANCE_ROOT, ProxyConfig

# `http2 on;` exists from nginx 1.25.1 (Debian 13 has 1.26); older ones (the admin machine's
# Debian 12 when unit tests run `nginx -t`) take `listen ... http2` instead.
HTTP2_DIRECTIVE_SINCE = (1, 25, 1)


def nginx_conf(cfg: ProxyConfig, *, nginx_version: tuple[int, ...] = (1, 26, 3),
               log_dir: str = "/var/log/nginx", pid_file: str = "/run/nginx.pid") -> str:
    return render("proxy/nginx.conf.j2", cfg=cfg,
                  http2_directive=nginx_version >= HTTP2_DIRECTIVE_SINCE,
                  log_dir=log_dir, pid_file=pid_file, maintenance_root=MAINTENANCE_ROOT,
                  acme_root=ACME_ROOT)


def maintenance_page() -> str:
    return render("proxy/maintenance.html.j2")
