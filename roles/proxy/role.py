"""The proxy role: nginx terminating TLS for every site on the site's own public IP and
passing requests to the site's web host over the private network (R-HOST-1, R-HOST-2).
A pure function of the host's context, for the deploy engine (engine/)."""
from __future__ import annotations

import dataclasses
import os
import shlex
from pathlib import Path

from engine.resources import (
    Absent,
    Check,
    Directory,
    File,
    Handler,
    Packages,
    Resource,
    Service,
)
from engine.role import Desired, HostContext
from roles import decommissioned
from roles.acme import config as acme_config
from roles.proxy import certificate, render
from roles.proxy.config import (
    ACME_ROOT,
    MAINTENANCE_DIR,
    MAINTENANCE_ROOT,
    ProxyConfig,
    proxy_config,
)
from roles.web import nginx_listen

RELOAD_NGINX = Handler("reload-nginx", ("systemctl", "reload-or-restart", "nginx.service"))
RESTART_NGINX = nginx_listen.RESTART
# Debian's default site appears during the first deploy's apt run, after the facts were read:
# the apt run that installs nginx removes it at once (Packages.leftovers).
DEFAULT_SITE = "/etc/nginx/sites-enabled/default"
NGINX_TEST = "/usr/sbin/nginx -t -q -c {}"


def site_names(cfg: ProxyConfig) -> tuple[str, ...]:
    return tuple(n for s in cfg.sites for n in s.names)


def tls_material(ctx: HostContext, cfg: ProxyConfig) -> certificate.Material | None:
    """Where this deploy's certificate comes from, read (never written: the role is pure):
    an explicit directory ($HOSTING_TLS_DIR), else the inventory's `tls.source.directory`
    (the lab's CA puts its certificate there), else nowhere (installed by ACME or by hand)."""
    source = os.environ.get(certificate.SOURCE_ENV)
    if source:
        return certificate.from_directory(Path(source))
    if ctx.inventory.tls_source_dir is not None:
        return certificate.from_directory(ctx.inventory.tls_source_dir)
    return None


def acme_certificates(ctx: HostContext, cfg: ProxyConfig) -> tuple[ProxyConfig, list[Resource]]:
    """The config with each ACME-served site pointed at its lineage's pair, and the resources
    that make sure that pair exists (a copy of the fallback pair where the hook has not yet
    installed one)."""
    served = acme_config.site_certificates(acme_config.acme(ctx.inventory), ctx.inventory)
    if not served:
        return cfg, []
    sites = tuple(dataclasses.replace(s, certificate=served[s.name].proxy_cert,
                                      key=served[s.name].proxy_key)
                  if s.name in served else s for s in cfg.sites)
    resources: list[Resource] = [Directory(acme_config.PROXY_CERT_DIR, 0o755)]
    for cert in dict.fromkeys(served.values()):
        pair = f"{shlex.quote(cert.proxy_cert)} {shlex.quote(cert.proxy_key)}"
        resources += [
            Directory(cert.proxy_dir, 0o755),
            Check(f"acme-fallback-{cert.lineage}",
                  ("sh", "-c", f"for f in {pair}; do test -s $f || exit 3; done"),
                  ("sh", "-c", "umask 077 && "
                   f"cp {shlex.quote(cfg.key)} {shlex.quote(cert.proxy_key)}.new && "
                   f"cp {shlex.quote(cfg.certificate)} {shlex.quote(cert.proxy_cert)}.new && "
                   f"chmod 0644 {shlex.quote(cert.proxy_cert)}.new && "
                   f"mv -f {shlex.quote(cert.proxy_key)}.new {shlex.quote(cert.proxy_key)} && "
                   f"mv -f {shlex.quote(cert.proxy_cert)}.new {shlex.quote(cert.proxy_cert)}"),
                  f"serve the fallback pair for {cert.lineage} until ACME installs its own",
                  notify=(RELOAD_NGINX.name,)),
        ]
    return dataclasses.replace(cfg, sites=sites), resources


def proxy(ctx: HostContext) -> Desired:
    cfg = proxy_config(ctx.inventory, ctx.host.name)
    resources: list[Resource] = [
        # First: no vhost or address for a site decommissioned here (roles/decommissioned.py).
        *(decommissioned.guard(s.name) for s in cfg.sites),
        Packages(("nginx",), leftovers=(DEFAULT_SITE,)),
        Directory(ACME_ROOT, 0o755),
        Directory(MAINTENANCE_ROOT, 0o755),
        File(f"{MAINTENANCE_ROOT}/_hosting_maintenance.html", render.maintenance_page()),
        # `fab proxy.maintenance --site S --on` drops a file here; nginx answers 503 with the
        # page above while it exists (R-MNT-1), no reload needed.
        Directory(MAINTENANCE_DIR, 0o755),
    ]
    material = tls_material(ctx, cfg)
    if material is not None:
        resources += certificate.resources(material, cfg.certificate, cfg.key,
                                           site_names(cfg), (RELOAD_NGINX.name,))
    # With ACME on (issue 14) each site covered by a certificate set is served its lineage's
    # pair, which the ACME deploy hook installs; until it has, that pair is a copy of the
    # uploaded or lab one (the fallback), made once, never over what the hook installed.
    cfg, seeds = acme_certificates(ctx, cfg)
    resources += seeds
    # The proxy -> web hop: this proxy's client certificate and the internal CA (issue 19
    # item 6), when the deploy carries them (roles/web/nginx_listen.internal_tls).
    internal = render.InternalPaths()
    tls = ctx.settings.internal_tls
    if tls is not None:
        leaf = tls.client(ctx.host.name)
        resources += nginx_listen.internal_tls(tls.ca_pem, leaf.cert_pem, leaf.key_pem,
                                               internal.ca, internal.client_cert,
                                               internal.client_key, (RELOAD_NGINX.name,))
    backends = {s.name: ctx.inventory.site(s.name).host for s in cfg.sites}
    conf = render.nginx_conf(cfg, backends, internal=internal)
    resources += [
        File("/etc/nginx/nginx.conf", conf, validate=NGINX_TEST,
             notify=(RELOAD_NGINX.name,)),
        Absent(DEFAULT_SITE),
        Service("nginx.service"),
        *nginx_listen.resources(conf),
    ]
    return Desired(tuple(resources), (RELOAD_NGINX, RESTART_NGINX))
