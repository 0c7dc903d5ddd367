"""The proxy's configuration files, rendered from templates/proxy. Pure."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engine.render import render
from roles.proxy.config import ACME_ROOT, MAINTENANCE_ROOT, ProxyConfig
from roles.web.render import INTERNAL_DIR, INTERNAL_PORT

# `http2 on;` exists from nginx 1.25.1 (Debian 13 has 1.26); older ones (the admin machine's
# Debian 12 when unit tests run `nginx -t`) take `listen ... http2` instead.
HTTP2_DIRECTIVE_SINCE = (1, 25, 1)



@dataclass(frozen=True)
class InternalPaths:
    """The proxy -> web hop's TLS files on the proxy (engine/tls_ca.py issues them) and the
    web hosts' private HTTPS port."""
    ca: str = f"{INTERNAL_DIR}/ca.pem"
    client_cert: str = f"{INTERNAL_DIR}/client.pem"
    client_key: str = f"{INTERNAL_DIR}/client.key"
    port: int = INTERNAL_PORT


def nginx_conf(cfg: ProxyConfig, backend_names: Mapping[str, str] | None = None, *,
               internal: InternalPaths | None = None,
               nginx_version: tuple[int, ...] = (1, 26, 3),
               log_dir: str = "/var/log/nginx", pid_file: str = "/run/nginx.pid") -> str:
    """`backend_names`: site name -> its web host's name (the proxy checks the web host's
    certificate against it); by default the site's own name, as the model names web hosts
    web-<site>."""
    names = dict(backend_names or {s.name: f"web-{s.name}" for s in cfg.sites})
    missing = [s.name for s in cfg.sites if s.name not in names]
    if missing:
        raise ValueError(f"no web host name for site(s) {', '.join(missing)}")
    return render("proxy/nginx.conf.j2", cfg=cfg,
                  http2_directive=nginx_version >= HTTP2_DIRECTIVE_SINCE,
                  log_dir=log_dir, pid_file=pid_file, maintenance_root=MAINTENANCE_ROOT,
                  acme_root=ACME_ROOT, internal=internal or InternalPaths(),
                  backend_names=names)


def maintenance_page() -> str:
    return render("proxy/maintenance.html.j2")
